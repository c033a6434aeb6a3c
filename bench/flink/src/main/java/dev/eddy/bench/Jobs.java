package dev.eddy.bench;

import java.time.Duration;
import java.util.List;
import org.apache.flink.api.common.eventtime.SerializableTimestampAssigner;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.AggregateFunction;
import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.EventTimeSessionWindows;
import org.apache.flink.streaming.api.windowing.assigners.SlidingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.assigners.WindowAssigner;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;

/**
 * The benchmark jobs: engine_bench.cc's engine cases written against Flink's DataStream API, with
 * the same workloads, window sizes and default record counts (those of the {@code /typed} cases).
 * Parallelism 1 everywhere, as in engine_bench; the job options are set in {@link FlinkBench}.
 */
final class Jobs {
  private Jobs() {}

  // engine_bench.cc: kTumbleMs, kSlideSizeMs, kSlideMs, kGapMs, kOutOfOrderness.
  static final long TUMBLE_MS = 10_000;
  static final long SLIDE_SIZE_MS = 60_000;
  static final long SLIDE_MS = 1_000;
  static final long GAP_MS = 10_000;
  static final Duration OUT_OF_ORDERNESS = Duration.ofSeconds(1);

  // engine_bench.cc: kChainWl, kTumbleWl, kSlideWl, kSessionWl.
  static final Workload CHAIN_WL = new Workload(100_000, 1, 100);
  static final Workload TUMBLE_WL = new Workload(100_000, 1, 100);
  static final Workload SLIDE_WL = new Workload(1_000, 1, 1);
  static final Workload SESSION_WL = new Workload(100_000, 1, 10);

  /** Adds one case's job, reading {@code records} generated records, to {@code env}. */
  @FunctionalInterface
  interface Builder {
    void build(StreamExecutionEnvironment env, long records);
  }

  /** A benchmark case; {@code group} is engine_bench's group (a-chain, b-tumbling, ...). */
  record Case(String name, String group, long defaultRecords, Builder builder) {}

  static List<Case> all() {
    return List.of(
        new Case("a-chain/flink", "a-chain", 120_000_000L, Jobs::chain),
        new Case("b-tumbling/flink", "b-tumbling", 2_000_000L,
            (env, n) -> window(env, TUMBLE_WL, n,
                TumblingEventTimeWindows.of(Duration.ofMillis(TUMBLE_MS)))),
        new Case("c-sliding/flink", "c-sliding", 80_000L,
            (env, n) -> window(env, SLIDE_WL, n,
                SlidingEventTimeWindows.of(
                    Duration.ofMillis(SLIDE_SIZE_MS), Duration.ofMillis(SLIDE_MS)))),
        new Case("d-session/flink", "d-session", 800_000L,
            (env, n) -> window(env, SESSION_WL, n,
                EventTimeSessionWindows.withGap(Duration.ofMillis(GAP_MS)))));
  }

  // ---- (a) source -> map -> filter -> map -> sink, one chained task ----

  static void chain(StreamExecutionEnvironment env, long n) {
    env.fromSource(new GeneratorSource(CHAIN_WL, n), WatermarkStrategy.noWatermarks(), "Generator")
        .map(new Map1())
        .filter(new Keep())
        .map(new Map2())
        .process(new ChecksumSink<Record>(new ChainHash()))
        .name("Checksum")
        .sinkTo(new DiscardingSink<>());
  }

  // With object reuse the maps update the record in place, as a tuned Flink job does (engine_bench's
  // typed maps copy the 104-byte struct, which allocates nothing).
  static final class Map1 implements MapFunction<Record, Record> {
    @Override
    public Record map(Record r) {
      r.value = r.value * 3 + 1;
      return r;
    }
  }

  static final class Keep implements FilterFunction<Record> {
    @Override
    public boolean filter(Record r) {
      return r.value % 2 == 0;
    }
  }

  static final class Map2 implements MapFunction<Record, Record> {
    @Override
    public Record map(Record r) {
      r.value = r.value + r.key;
      return r;
    }
  }

  static final class ChainHash implements ChecksumSink.Hash<Record> {
    @Override
    public long of(Record r) {
      return Workload.chainChecksum(r.key, r.value);
    }
  }

  // ---- (b), (c), (d) keyBy(key) -> event-time window -> count + sum -> sink ----

  static void window(StreamExecutionEnvironment env, Workload w, long n,
      WindowAssigner<Object, TimeWindow> assigner) {
    DataStream<Record> src =
        env.fromSource(new GeneratorSource(w, n), WatermarkStrategy.noWatermarks(), "Generator")
            .assignTimestampsAndWatermarks(
                WatermarkStrategy.<Record>forBoundedOutOfOrderness(OUT_OF_ORDERNESS)
                    .withTimestampAssigner(new EventTime()));
    src.keyBy(new KeyOf())
        .window(assigner)
        .aggregate(new CountSum(), new ToWindowResult())
        .process(new ChecksumSink<WindowResult>(new WindowHash()))
        .name("Checksum")
        .sinkTo(new DiscardingSink<>());
  }

  static final class EventTime implements SerializableTimestampAssigner<Record> {
    @Override
    public long extractTimestamp(Record r, long previous) {
      return r.ts;
    }
  }

  static final class KeyOf implements KeySelector<Record, Long> {
    @Override
    public Long getKey(Record r) {
      return r.key;
    }
  }

  /** engine_bench's {@code CountSum}. */
  static final class CountSum implements AggregateFunction<Record, Acc, Acc> {
    @Override
    public Acc createAccumulator() {
      return new Acc();
    }

    @Override
    public Acc add(Record r, Acc acc) {
      acc.count++;
      acc.sum += r.value;
      return acc;
    }

    @Override
    public Acc getResult(Acc acc) {
      return acc;
    }

    @Override
    public Acc merge(Acc a, Acc b) {
      a.count += b.count;
      a.sum += b.sum;
      return a;
    }
  }

  /**
   * Adds key and window to the pre-aggregated result (engine_bench's {@code ToWindowResult}); one
   * output object, reused (object reuse: the chained checksum sink does not keep it).
   */
  static final class ToWindowResult extends ProcessWindowFunction<Acc, WindowResult, Long, TimeWindow> {
    private transient WindowResult out;

    @Override
    public void process(Long key, Context ctx, Iterable<Acc> in, Collector<WindowResult> collector) {
      if (out == null) out = new WindowResult();
      Acc acc = in.iterator().next();
      out.key = key;
      out.start = ctx.window().getStart();
      out.end = ctx.window().getEnd();
      out.count = acc.count;
      out.sum = acc.sum;
      collector.collect(out);
    }
  }

  static final class WindowHash implements ChecksumSink.Hash<WindowResult> {
    @Override
    public long of(WindowResult r) {
      return Workload.windowChecksum(r.key, r.start, r.end, r.count, r.sum);
    }
  }
}
