/**
 * Public, permissively licensed COCO detectors that `cityedge models fetch` installs: each file
 * pinned by its URL at a fixed commit and by its sha256, so what is installed is exactly what
 * was checked here.
 */
export interface CatalogueEntry {
  /** The name `models fetch` takes; also the model id and the folder name. */
  name: string;
  summary: string;
  url: string;
  sha256: string;
  bytes: number;
  /** Where the file comes from: repository, path and commit. */
  source: { repository: string; path: string; commit: string };
  licence: string;
  licence_url: string;
  labels: "coco";
  /** What the layout recogniser should find (the fetch fails if it finds another). */
  decoder: string;
}

export const CATALOGUE: readonly CatalogueEntry[] = [
  {
    name: "yolox-nano",
    summary: "YOLOX-Nano (Megvii), COCO 80 classes, 416x416, 3.7 MB: the default real detector",
    url: "https://raw.githubusercontent.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample/3d4f1119d0694200671c08069ecb847aa0d8495a/model/yolox_nano.onnx",
    sha256: "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
    bytes: 3_660_092,
    source: {
      repository: "https://github.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample",
      path: "model/yolox_nano.onnx",
      commit: "3d4f1119d0694200671c08069ecb847aa0d8495a",
    },
    licence: "Apache-2.0",
    licence_url: "https://github.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample/blob/3d4f1119d0694200671c08069ecb847aa0d8495a/LICENSE",
    labels: "coco",
    decoder: "yolox",
  },
];

/** The model every installer sets up, for the production config's cameras. */
export const DEFAULT_DETECTOR = "yolox-nano";

export function catalogueEntry(name: string): CatalogueEntry | undefined {
  return CATALOGUE.find((e) => e.name === name);
}
