import { LocalCancelBus } from "../../src/chat/local-cancel-bus.js";
import { cancelBusContract } from "../contracts/cancel-bus-contract.js";

// In one process every "node" is the same bus.
cancelBusContract("in-process", () => {
  const bus = new LocalCancelBus();
  return { node: () => bus };
});
