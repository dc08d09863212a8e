import { LocalStreamBuffer } from "../../src/chat/local-stream-buffer.js";
import { streamBufferContract } from "../contracts/stream-buffer-contract.js";

const GRACE = 200;

streamBufferContract("in-process", () => new LocalStreamBuffer({ graceMs: GRACE }), { endGraceMs: GRACE });
