import { LocalPresence } from "../../src/realtime/local-presence.js";
import { presenceContract } from "../contracts/presence-contract.js";

presenceContract("in-process", () => new LocalPresence());
