package dev.eddy.bench;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.core.io.InputStatus;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * Bounded deterministic generator, the Flink (FLIP-27 source API) counterpart of Eddy's
 * {@code env.Generate}: subtask i of p emits records n = i, i + p, ... below {@code count}, each
 * written by {@link Workload#generate} into one reused {@link Record} (the jobs run with object reuse
 * enabled, and nothing downstream in the source's chain keeps a reference), up to 512 records per
 * {@code pollNext} call as Eddy's {@code GeneratorReader} does.
 *
 * <p>One split per subtask holds that subtask's position, so the source is checkpointable, though
 * the benchmarks do not checkpoint.
 */
public final class GeneratorSource
    implements Source<Record, GeneratorSource.Split, List<GeneratorSource.Split>>,
        ResultTypeQueryable<Record> {
  private static final long serialVersionUID = 1L;

  /** Records emitted per {@code pollNext} call at most (Eddy's GeneratorReader: 512). */
  static final int BATCH = 512;

  private final Workload workload;
  private final long count;

  public GeneratorSource(Workload workload, long count) {
    this.workload = workload;
    this.count = count;
  }

  @Override
  public Boundedness getBoundedness() {
    return Boundedness.BOUNDED;
  }

  @Override
  public TypeInformation<Record> getProducedType() {
    return TypeInformation.of(Record.class);
  }

  @Override
  public SourceReader<Record, Split> createReader(SourceReaderContext ctx) {
    return new Reader(workload);
  }

  @Override
  public SplitEnumerator<Split, List<Split>> createEnumerator(SplitEnumeratorContext<Split> ctx) {
    List<Split> splits = new ArrayList<>();
    int p = ctx.currentParallelism();
    for (int i = 0; i < p; i++) splits.add(new Split(i, i, p, count));
    return new Enumerator(ctx, splits);
  }

  @Override
  public SplitEnumerator<Split, List<Split>> restoreEnumerator(
      SplitEnumeratorContext<Split> ctx, List<Split> pending) {
    return new Enumerator(ctx, new ArrayList<>(pending));
  }

  @Override
  public SimpleVersionedSerializer<Split> getSplitSerializer() {
    return new SplitSerializer();
  }

  @Override
  public SimpleVersionedSerializer<List<Split>> getEnumeratorCheckpointSerializer() {
    return new PendingSerializer();
  }

  /** The records n = next, next + step, ... below end of one subtask. Immutable. */
  public static final class Split implements SourceSplit {
    final int subtask;
    final long next;
    final long step;
    final long end;

    Split(int subtask, long next, long step, long end) {
      this.subtask = subtask;
      this.next = next;
      this.step = step;
      this.end = end;
    }

    @Override
    public String splitId() {
      return Integer.toString(subtask);
    }
  }

  /** Hands split i to subtask i when its reader registers; runs on the coordinator thread. */
  static final class Enumerator implements SplitEnumerator<Split, List<Split>> {
    private final SplitEnumeratorContext<Split> ctx;
    private final Map<Integer, Split> pending = new HashMap<>();

    Enumerator(SplitEnumeratorContext<Split> ctx, List<Split> splits) {
      this.ctx = ctx;
      for (Split s : splits) pending.put(s.subtask, s);
    }

    @Override
    public void start() {}

    @Override
    public void handleSplitRequest(int subtask, String host) {
      assign(subtask);
    }

    @Override
    public void addSplitsBack(List<Split> splits, int subtask) {
      for (Split s : splits) pending.put(s.subtask, s);
      if (ctx.registeredReaders().containsKey(subtask)) assign(subtask);
    }

    @Override
    public void addReader(int subtask) {
      assign(subtask);
    }

    private void assign(int subtask) {
      Split s = pending.remove(subtask);
      if (s != null) ctx.assignSplit(s, subtask);
      ctx.signalNoMoreSplits(subtask);
    }

    @Override
    public List<Split> snapshotState(long checkpointId) {
      return new ArrayList<>(pending.values());
    }

    @Override
    public void close() {}
  }

  /** Emits its splits' records; all calls come from the source task's thread. */
  static final class Reader implements SourceReader<Record, Split> {
    private final Workload workload;
    private final Record record = new Record();
    private final ArrayDeque<Split> splits = new ArrayDeque<>();
    private Split current;
    private long next;
    private boolean noMoreSplits;
    private CompletableFuture<Void> available = new CompletableFuture<>();

    Reader(Workload workload) {
      this.workload = workload;
    }

    @Override
    public void start() {}

    @Override
    public InputStatus pollNext(ReaderOutput<Record> out) {
      if (current == null) {
        current = splits.poll();
        if (current == null) {
          return noMoreSplits ? InputStatus.END_OF_INPUT : InputStatus.NOTHING_AVAILABLE;
        }
        next = current.next;
      }
      final long step = current.step;
      final long end = current.end;
      long n = next;
      for (int i = 0; i < BATCH && n < end; i++, n += step) {
        workload.generate(n, record);
        out.collect(record);
      }
      next = n;
      if (n >= end) {
        current = null;
        if (splits.isEmpty() && noMoreSplits) return InputStatus.END_OF_INPUT;
      }
      return InputStatus.MORE_AVAILABLE;
    }

    @Override
    public List<Split> snapshotState(long checkpointId) {
      List<Split> state = new ArrayList<>();
      if (current != null) state.add(new Split(current.subtask, next, current.step, current.end));
      state.addAll(splits);
      return state;
    }

    @Override
    public CompletableFuture<Void> isAvailable() {
      if (current != null || !splits.isEmpty() || noMoreSplits) {
        return CompletableFuture.completedFuture(null);
      }
      if (available.isDone()) available = new CompletableFuture<>();
      return available;
    }

    @Override
    public void addSplits(List<Split> added) {
      splits.addAll(added);
      available.complete(null);
    }

    @Override
    public void notifyNoMoreSplits() {
      noMoreSplits = true;
      available.complete(null);
    }

    @Override
    public void close() {}
  }

  static final class SplitSerializer implements SimpleVersionedSerializer<Split> {
    @Override
    public int getVersion() {
      return 1;
    }

    @Override
    public byte[] serialize(Split s) throws IOException {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      DataOutputStream out = new DataOutputStream(bytes);
      write(s, out);
      out.flush();
      return bytes.toByteArray();
    }

    @Override
    public Split deserialize(int version, byte[] data) throws IOException {
      return read(new DataInputStream(new ByteArrayInputStream(data)));
    }

    static void write(Split s, DataOutputStream out) throws IOException {
      out.writeInt(s.subtask);
      out.writeLong(s.next);
      out.writeLong(s.step);
      out.writeLong(s.end);
    }

    static Split read(DataInputStream in) throws IOException {
      return new Split(in.readInt(), in.readLong(), in.readLong(), in.readLong());
    }
  }

  static final class PendingSerializer implements SimpleVersionedSerializer<List<Split>> {
    @Override
    public int getVersion() {
      return 1;
    }

    @Override
    public byte[] serialize(List<Split> splits) throws IOException {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      DataOutputStream out = new DataOutputStream(bytes);
      out.writeInt(splits.size());
      for (Split s : splits) SplitSerializer.write(s, out);
      out.flush();
      return bytes.toByteArray();
    }

    @Override
    public List<Split> deserialize(int version, byte[] data) throws IOException {
      DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
      int n = in.readInt();
      List<Split> splits = new ArrayList<>(n);
      for (int i = 0; i < n; i++) splits.add(SplitSerializer.read(in));
      return splits;
    }
  }
}
