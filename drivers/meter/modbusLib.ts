import ModbusSerial from "modbus-serial";

/*
 * modbus-serial is CommonJS with an ESM-style default in its typings; under NodeNext the
 * default import is the module object, whose `default` is the client class at runtime too.
 */
export const ModbusRTU = ModbusSerial.default;
export const ServerTCP = ModbusSerial.ServerTCP;
export type ModbusClient = InstanceType<typeof ModbusSerial.default>;
