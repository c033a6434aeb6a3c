package dev.eddy.bench;

import java.io.Serializable;
import java.util.Arrays;

/**
 * Generator parameters and the per-record arithmetic of engine_bench.cc, bit for bit: record
 * {@code n} has {@code key = (hash(n) % keys + keys) % keys} (splitmix64's finalizer),
 * {@code ts = n * tsNum / tsDen} ms and {@code value = n % 1000}; the payload is 76 bytes of 'x'.
 * Java's {@code long} arithmetic wraps like C++'s uint64_t and {@code %} truncates toward zero like
 * C++'s, so the same n gives the same record and the checksums below match engine_bench's.
 */
public final class Workload implements Serializable {
  private static final long serialVersionUID = 1L;

  public final long keys;
  public final long tsNum;
  public final long tsDen;

  public Workload(long keys, long tsNum, long tsDen) {
    this.keys = keys;
    this.tsNum = tsNum;
    this.tsDen = tsDen;
  }

  /** Writes record {@code n} into {@code r} (reused: the source emits one object). */
  public void generate(long n, Record r) {
    long h = mix64(n);
    r.key = ((h % keys) + keys) % keys;
    r.ts = n * tsNum / tsDen;
    r.value = n % 1000;
    Arrays.fill(r.payload, (byte) 'x');
  }

  /** splitmix64's finalizer, engine_bench's {@code Mix64} and the job spec's {@code hash()}. */
  public static long mix64(long x) {
    x ^= x >>> 30;
    x *= 0xbf58476d1ce4e5b9L;
    x ^= x >>> 27;
    x *= 0x94d049bb133111ebL;
    x ^= x >>> 31;
    return x;
  }

  /** engine_bench's {@code ChainChecksum}. */
  public static long chainChecksum(long key, long value) {
    return value * 1000003L + key;
  }

  /** engine_bench's {@code WindowChecksum}. */
  public static long windowChecksum(long key, long start, long end, long count, long sum) {
    long h = mix64(sum);
    h = mix64(h ^ count);
    h = mix64(h ^ end);
    h = mix64(h ^ start);
    return mix64(h ^ key);
  }
}
