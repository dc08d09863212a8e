/** k6/execution: the running iteration's scenario and VU; outside a VU context it throws, as k6 does. */
import { vu } from "../vu-channel.js";

function current() {
  if (vu.phase === "init" || vu.exec === null) throw new Error("getting scenario information outside of the VU context is not supported");
  return vu.exec;
}

const exec = {
  get scenario() {
    const s = current().scenario;
    if (s === null) throw new Error("getting scenario information outside of a scenario (in setup or teardown) is not supported");
    return { ...s };
  },
  get vu() {
    return { ...current().vu };
  },
  get instance() {
    return { vusActive: 0, vusInitialized: 0, iterationsCompleted: 0, iterationsInterrupted: 0, currentTestRunDuration: 0 };
  },
  test: {
    abort(reason?: string): never {
      throw new Error(`test aborted: ${reason ?? ""}`);
    },
  },
};

export default exec;
