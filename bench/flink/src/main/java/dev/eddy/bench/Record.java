package dev.eddy.bench;

import java.util.Arrays;

/**
 * The benchmark record, engine_bench's {@code Record}: a key, an event timestamp (ms), a value and a
 * 76-byte opaque payload, 100 bytes of data. A Flink POJO (public fields, no-arg constructor), so
 * the network path uses Flink's PojoSerializer: three longs and a length-prefixed byte array.
 */
public class Record {
  public static final int PAYLOAD_BYTES = 76;

  public long key;
  public long ts;
  public long value;
  public byte[] payload;

  public Record() {
    payload = new byte[PAYLOAD_BYTES];
  }

  @Override
  public String toString() {
    return "Record{key=" + key + ", ts=" + ts + ", value=" + value + ", payload="
        + Arrays.toString(payload) + "}";
  }
}
