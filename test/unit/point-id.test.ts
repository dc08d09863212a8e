import { describe, expect, it } from "vitest";
import { MESSAGE_POINT_NAMESPACE, isUuid, pointIdForMessage, uuidV5 } from "../../src/memory/point-id.js";

// Expected values computed independently with Python's uuid.uuid5.
describe("uuidV5", () => {
  it("matches the RFC / Python reference value", () => {
    expect(uuidV5("python.org", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")).toBe("886313e1-3b8a-5372-9b90-0c9aee199e5d");
    expect(uuidV5("7", "6ba7b811-9dad-11d1-80b4-00c04fd430c8")).toBe("5bd20866-3478-53f7-bc79-d2aae304b443");
  });

  it("accepts an upper-case namespace and rejects a non-UUID one", () => {
    expect(uuidV5("python.org", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8")).toBe("886313e1-3b8a-5372-9b90-0c9aee199e5d");
    expect(() => uuidV5("x", "not-a-uuid")).toThrow(TypeError);
  });
});

describe("pointIdForMessage", () => {
  it("derives the fixed version-5 id of a message id", () => {
    expect(pointIdForMessage(0)).toBe("12e9a06a-1bb0-50d3-a9b4-9706c144234d");
    expect(pointIdForMessage(1)).toBe("aa5b3e40-4bd8-5ca7-b33e-03469a39dc48");
    expect(pointIdForMessage(42)).toBe("4702a32d-8465-5f6b-a864-6403a1e176e0");
    expect(pointIdForMessage(9007199254740993n)).toBe("90b571ca-dabe-5d3d-a58e-57b4bf05a173");
  });

  it("is deterministic, and a number and a bigint of one value agree", () => {
    expect(pointIdForMessage(123456789)).toBe(pointIdForMessage(123456789));
    expect(pointIdForMessage(123456789)).toBe(pointIdForMessage(123456789n));
  });

  it("gives distinct ids for distinct messages", () => {
    const ids = new Set(Array.from({ length: 2000 }, (_, i) => pointIdForMessage(i)));
    expect(ids.size).toBe(2000);
  });

  it("produces ids that are well-formed version-5 RFC 4122 UUIDs", () => {
    for (const id of [0, 1, 99, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
      const uuid = pointIdForMessage(id);
      expect(isUuid(uuid)).toBe(true);
      expect(uuid[14]).toBe("5");
      expect("89ab").toContain(uuid[19]);
    }
  });

  it("depends on the namespace", () => {
    const other = "6f1c2b4e-8d0a-4c55-9b1e-3a7d52e0c9f4";
    expect(pointIdForMessage(42, other)).not.toBe(pointIdForMessage(42));
    expect(pointIdForMessage(42, MESSAGE_POINT_NAMESPACE)).toBe(pointIdForMessage(42));
  });

  it("rejects ids that cannot be message ids", () => {
    expect(() => pointIdForMessage(-1)).toThrow(RangeError);
    expect(() => pointIdForMessage(-1n)).toThrow(RangeError);
    expect(() => pointIdForMessage(1.5)).toThrow(RangeError);
    expect(() => pointIdForMessage(Number.NaN)).toThrow(RangeError);
    expect(() => pointIdForMessage(2 ** 53)).toThrow(RangeError);
  });
});
