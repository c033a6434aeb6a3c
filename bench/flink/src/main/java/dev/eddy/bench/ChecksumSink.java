package dev.eddy.bench;

import java.io.Serializable;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

/**
 * The counting end of every job (engine_bench's {@code ChecksumSink}): counts the results and sums
 * an order-independent checksum of each (wrapping, like engine_bench's uint64_t sum), into two
 * accumulators that the driver reads from the {@code JobExecutionResult}. Emits nothing; the jobs
 * put a {@code DiscardingSink} after it. A subtask's counters are plain fields ({@code LongCounter}
 * adds to a long), merged by Flink when the job ends.
 */
public final class ChecksumSink<T> extends ProcessFunction<T, Void> {
  private static final long serialVersionUID = 1L;

  public static final String OUTPUTS = "outputs";
  public static final String CHECKSUM = "checksum";

  /** The checksum of one result. */
  @FunctionalInterface
  public interface Hash<T> extends Serializable {
    long of(T value);
  }

  private final Hash<T> hash;
  private transient LongCounter outputs;
  private transient LongCounter checksum;

  public ChecksumSink(Hash<T> hash) {
    this.hash = hash;
  }

  @Override
  public void open(OpenContext ctx) {
    outputs = new LongCounter();
    checksum = new LongCounter();
    getRuntimeContext().addAccumulator(OUTPUTS, outputs);
    getRuntimeContext().addAccumulator(CHECKSUM, checksum);
  }

  @Override
  public void processElement(T value, Context ctx, Collector<Void> out) {
    outputs.add(1L);
    checksum.add(hash.of(value));
  }
}
