/**
 * The meters bench's Modbus TCP server, in its own process so its work is not counted as the
 * daemon's: every unit id answers, every register holds a float32 230.5 (high word 0x4366,
 * low word 0x8000). Forked with the port as argv[2]; sends {ready: true} over IPC.
 */
import { ServerTCP } from "../drivers/meter/modbusLib.js";

type Cb = (err: Error | null, value: number[]) => void;
type Cb1 = (err: Error | null, value: number) => void;

const words = (addr: number, length: number): number[] => Array.from({ length }, (_, i) => ((addr + i) % 2 === 0 ? 0x4366 : 0x8000));
const port = Number(process.argv[2]);
const server = new ServerTCP(
  {
    getMultipleHoldingRegisters: (addr: number, length: number, _u: number, cb: Cb) => cb(null, words(addr, length)),
    getMultipleInputRegisters: (addr: number, length: number, _u: number, cb: Cb) => cb(null, words(addr, length)),
    getHoldingRegister: (addr: number, _u: number, cb: Cb1) => cb(null, words(addr, 1)[0]!),
    getInputRegister: (addr: number, _u: number, cb: Cb1) => cb(null, words(addr, 1)[0]!),
  },
  { host: "127.0.0.1", port, unitID: 255 },
);
server.on("initialized", () => process.send?.({ ready: true }));
server.on("serverError", (err: unknown) => {
  process.stderr.write(`modbus bench server: ${String(err)}\n`);
  process.exit(2);
});
process.on("disconnect", () => process.exit(0));
