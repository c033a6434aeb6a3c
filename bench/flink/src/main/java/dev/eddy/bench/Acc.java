package dev.eddy.bench;

/** Accumulator of the window cases: count and sum of {@code value} (engine_bench's {@code Acc}). */
public class Acc {
  public long count;
  public long sum;

  public Acc() {}
}
