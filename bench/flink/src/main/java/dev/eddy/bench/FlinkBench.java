package dev.eddy.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.runtime.jobgraph.JobGraph;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.runtime.util.EnvironmentInformation;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Runs the {@link Jobs} on Apache Flink and reports records/s per core, the Flink side of
 * bench/compare.sh. Mirrors engine_bench's command line and output:
 *
 * <pre>
 *   bench/flink/run.sh                       every case, 1 warm-up + 3 timed runs, median reported
 *   bench/flink/run.sh tumbling              cases whose name contains "tumbling"
 *   bench/flink/run.sh b-tumbling@1500000    that case with 1.5M records
 *   bench/flink/run.sh --help                options
 * </pre>
 *
 * <p>Each case runs in its own JVM (a child of this one, started with the same JVM options), so that
 * one case's JIT profile and heap do not affect the next. The child starts one MiniCluster (one
 * TaskManager, one slot), runs the job untimed {@code --warmup} times (JIT), then {@code --reps}
 * timed times, each submitted as a JobGraph to the running cluster so that cluster start-up is not
 * measured. A run's CPU time is the process's (all threads: tasks, GC, JIT, cluster services) from
 * building the job to its end, from {@code OperatingSystemMXBean.getProcessCpuTime}; "per core" =
 * records / that CPU time, as engine_bench divides by its process's user+sys time. Peak RSS is
 * {@code VmHWM} of the child, reset before each run through {@code /proc/self/clear_refs} (so it is
 * the run's own peak when the kernel allows that, and the JVM's peak so far otherwise).
 */
public final class FlinkBench {
  private FlinkBench() {}

  static final class Options {
    final List<String> filters = new ArrayList<>();
    int reps = 3;
    int warmup = 1;
    double scale = 1.0;
    long records = 0;
    boolean csv = false;
    boolean list = false;
    boolean fork = true;
    boolean child = false;
  }

  /** One case with its record count. */
  record Planned(Jobs.Case c, long records) {}

  /** One run's measurements (a child sends them to the parent as one line). */
  static final class Measurement {
    boolean ok = true;
    String error = "";
    long records;
    double wallS;
    double cpuS;
    double gcS;
    long rssKib;
    long outputs;
    long checksum;

    double perCore() {
      return cpuS > 0 ? records / cpuS : 0;
    }

    String encode() {
      return String.join("\t", "@@run", Boolean.toString(ok), Long.toString(records),
          Double.toString(wallS), Double.toString(cpuS), Double.toString(gcS),
          Long.toString(rssKib), Long.toString(outputs), Long.toUnsignedString(checksum),
          error.replace('\t', ' ').replace('\n', ' '));
    }

    static Measurement decode(String line) {
      String[] f = line.split("\t", -1);
      Measurement m = new Measurement();
      m.ok = Boolean.parseBoolean(f[1]);
      m.records = Long.parseLong(f[2]);
      m.wallS = Double.parseDouble(f[3]);
      m.cpuS = Double.parseDouble(f[4]);
      m.gcS = Double.parseDouble(f[5]);
      m.rssKib = Long.parseLong(f[6]);
      m.outputs = Long.parseLong(f[7]);
      m.checksum = Long.parseUnsignedLong(f[8]);
      m.error = f.length > 9 ? f[9] : "";
      return m;
    }

    static Measurement failed(long records, String error) {
      Measurement m = new Measurement();
      m.ok = false;
      m.records = records;
      m.error = error;
      return m;
    }
  }

  /** A case's timed runs and its fixed per-job cost (the same job over 0 records). */
  static final class CaseResult {
    final Planned p;
    final List<Measurement> runs = new ArrayList<>();
    Measurement empty;

    CaseResult(Planned p) {
      this.p = p;
    }
  }

  static void usage() {
    System.out.print(
        "usage: run.sh [options] [filter...]   (java -jar eddy-flink-bench.jar ...)\n"
            + "  filter         run cases whose name contains any filter (e.g. tumbling, a-chain);\n"
            + "                 FILTER@N runs the matching cases with N records\n"
            + "  --reps=N       timed runs per case, median reported (default 3)\n"
            + "  --warmup=N     untimed runs per case before the timed ones, for the JIT (default 1)\n"
            + "  --scale=X      multiply every case's default record count by X (default 1)\n"
            + "  --records=N    use N records for every selected case (unless FILTER@N)\n"
            + "  --csv          results as CSV on stdout (engine_bench --csv's columns, then gc_s,\n"
            + "                 overhead_cpu_s); the banner goes to stderr\n"
            + "  --no-fork      run every case in this JVM (debugging; JIT state is shared)\n"
            + "  --list         list cases and their default record counts\n");
  }

  static Options parse(String[] args) {
    Options o = new Options();
    for (String a : args) {
      if (a.equals("--help") || a.equals("-h")) {
        usage();
        return null;
      } else if (a.startsWith("--reps=")) {
        o.reps = Math.max(1, Integer.parseInt(a.substring(7)));
      } else if (a.startsWith("--warmup=")) {
        o.warmup = Math.max(0, Integer.parseInt(a.substring(9)));
      } else if (a.startsWith("--scale=")) {
        o.scale = Double.parseDouble(a.substring(8));
      } else if (a.startsWith("--records=")) {
        o.records = Long.parseLong(a.substring(10));
      } else if (a.equals("--csv")) {
        o.csv = true;
      } else if (a.equals("--list")) {
        o.list = true;
      } else if (a.equals("--no-fork")) {
        o.fork = false;
      } else if (a.equals("--child")) {
        o.child = true;
      } else if (a.startsWith("--")) {
        System.err.println("unknown option " + a);
        usage();
        return null;
      } else {
        o.filters.add(a);
      }
    }
    return o;
  }

  static List<Planned> plan(Options o) {
    List<Planned> out = new ArrayList<>();
    List<String> filters = o.filters.isEmpty() ? List.of("") : o.filters;
    for (String f : filters) {
      String name = f;
      long n = -1;
      int at = f.lastIndexOf('@');
      if (at >= 0) {
        name = f.substring(0, at);
        n = Long.parseLong(f.substring(at + 1).replace("_", ""));
      }
      for (Jobs.Case c : Jobs.all()) {
        if (!c.name().contains(name)) continue;
        long records = n >= 0 ? n
            : o.records > 0 ? o.records
            : (long) (c.defaultRecords() * o.scale);
        Planned p = new Planned(c, records);
        boolean dup = out.stream()
            .anyMatch(q -> q.c().name().equals(c.name()) && q.records() == records);
        if (!dup) out.add(p);
      }
    }
    return out;
  }

  public static void main(String[] args) throws Exception {
    Options o = parse(args);
    if (o == null) System.exit(1);
    if (o.list) {
      for (Jobs.Case c : Jobs.all()) {
        System.out.printf(Locale.ROOT, "%-22s %12d records%n", c.name(), c.defaultRecords());
      }
      return;
    }
    List<Planned> plan = plan(o);
    if (plan.isEmpty()) {
      System.err.println("no case matches " + o.filters);
      System.exit(1);
    }
    if (o.child) {
      System.exit(child(o, plan));
    }
    System.exit(parent(o, plan));
  }

  // ---- child: one MiniCluster, warm-up, timed runs ----

  static int child(Options o, List<Planned> plan) throws Exception {
    try (Cluster cluster = Cluster.start()) {
      for (Planned p : plan) {
        CaseResult r = runCase(cluster, p, o);
        System.out.println("@@case\t" + p.c().name() + "\t" + p.records());
        System.out.println(r.empty.encode().replace("@@run", "@@empty"));
        for (Measurement m : r.runs) System.out.println(m.encode());
        System.out.flush();
      }
    }
    return 0;
  }

  /** Runs one case: warm-up, two empty jobs (the second is reported), timed runs. */
  static CaseResult runCase(Cluster cluster, Planned p, Options o) {
    CaseResult r = new CaseResult(p);
    for (int i = 0; i < o.warmup; i++) {
      Measurement m = cluster.measure(p.c(), p.records());
      progress(p, "warm-up " + (i + 1), m);
    }
    cluster.measure(p.c(), 0);
    r.empty = cluster.measure(p.c(), 0);
    for (int i = 0; i < o.reps; i++) {
      Measurement m = cluster.measure(p.c(), p.records());
      progress(p, "run " + (i + 1), m);
      r.runs.add(m);
    }
    return r;
  }

  static void progress(Planned p, String what, Measurement m) {
    System.err.printf(Locale.ROOT,
        "  %-26s %s: %d records, wall %.2f s, cpu %.2f s, %s/s per core, gc %.2f s, rss %.0f MiB%s%n",
        p.c().name(), what, m.records, m.wallS, m.cpuS, rate(m.perCore()), m.gcS,
        m.rssKib / 1024.0, m.ok ? "" : " FAILED: " + m.error);
  }

  /** A started MiniCluster and the process probes. Used by one thread. */
  static final class Cluster implements AutoCloseable {
    private final MiniCluster mini;
    private final com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    private Cluster(MiniCluster mini) {
      this.mini = mini;
    }

    static Cluster start() throws Exception {
      Configuration conf = new Configuration();
      conf.set(RestOptions.BIND_PORT, "0");
      MiniCluster mini = new MiniCluster(new MiniClusterConfiguration.Builder()
          .setConfiguration(conf)
          .setNumTaskManagers(1)
          .setNumSlotsPerTaskManager(1)
          .build());
      mini.start();
      return new Cluster(mini);
    }

    /** The job options every case runs with (Flink's defaults otherwise: heap state, 32 KiB
     * network buffers, no checkpoints). */
    static StreamExecutionEnvironment newEnv() {
      Configuration c = new Configuration();
      c.set(ExecutionOptions.RUNTIME_MODE, RuntimeExecutionMode.STREAMING);
      c.set(PipelineOptions.OBJECT_REUSE, true);
      c.set(PipelineOptions.GENERIC_TYPES, false);  // fail rather than fall back to Kryo
      c.set(ExecutionOptions.BUFFER_TIMEOUT, Duration.ofMillis(10));  // engine_bench's default
      c.set(PipelineOptions.AUTO_WATERMARK_INTERVAL, Duration.ofMillis(200));
      StreamExecutionEnvironment env = new StreamExecutionEnvironment(c);
      env.setParallelism(1);
      if (!env.getConfig().isObjectReuseEnabled()) throw new IllegalStateException("no object reuse");
      return env;
    }

    Measurement measure(Jobs.Case c, long records) {
      System.gc();
      resetPeakRss();
      Measurement m = new Measurement();
      m.records = records;
      double gc0 = gcSeconds();
      long cpu0 = os.getProcessCpuTime();
      long t0 = System.nanoTime();
      try {
        StreamExecutionEnvironment env = newEnv();
        c.builder().build(env, records);
        JobGraph job = env.getStreamGraph().getJobGraph();
        JobExecutionResult result = mini.executeJobBlocking(job);
        long t1 = System.nanoTime();
        long cpu1 = os.getProcessCpuTime();
        m.wallS = (t1 - t0) / 1e9;
        m.cpuS = (cpu1 - cpu0) / 1e9;
        m.gcS = gcSeconds() - gc0;
        Long outputs = result.getAccumulatorResult(ChecksumSink.OUTPUTS);
        Long checksum = result.getAccumulatorResult(ChecksumSink.CHECKSUM);
        m.outputs = outputs == null ? 0 : outputs;
        m.checksum = checksum == null ? 0 : checksum;
      } catch (Exception e) {
        m.ok = false;
        Throwable root = e;
        while (root.getCause() != null) root = root.getCause();
        m.error = root.toString();
      }
      m.rssKib = peakRssKib();
      return m;
    }

    @Override
    public void close() throws Exception {
      mini.close();
    }
  }

  static double gcSeconds() {
    long ms = 0;
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      ms += Math.max(0, gc.getCollectionTime());
    }
    return ms / 1e3;
  }

  /** Resets VmHWM to the current RSS (Linux >= 4.0); ignored where not allowed. */
  static void resetPeakRss() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException | RuntimeException e) {
      // Peak stays the process's peak so far.
    }
  }

  static long peakRssKib() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.substring(6).replace("kB", "").trim());
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux: no RSS.
    }
    return 0;
  }

  // ---- parent: one child JVM per case, then the table ----

  static int parent(Options o, List<Planned> plan) throws Exception {
    String banner = String.format(Locale.ROOT,
        "flink_bench: Apache Flink %s on Java %s (%s), MiniCluster 1 TM x 1 slot, parallelism 1, "
            + "object reuse, heap state; %d warm-up + %d timed run(s) per case, median by "
            + "records/s per core; %d CPUs online; load average %s%n",
        EnvironmentInformation.getVersion(), Runtime.version(),
        String.join(" ", jvmOptions()).replaceAll("--add-(opens|exports)=\\S+ ?", "").trim(),
        o.warmup, o.reps, Runtime.getRuntime().availableProcessors(), loadAverage());
    (o.csv ? System.err : System.out).print(banner);
    List<CaseResult> results = new ArrayList<>();
    if (!o.fork) {
      try (Cluster cluster = Cluster.start()) {
        for (Planned p : plan) results.add(runCase(cluster, p, o));
      }
    } else {
      for (Planned p : plan) results.add(runChild(p, o));
    }
    return report(o, results);
  }

  static List<String> jvmOptions() {
    List<String> out = new ArrayList<>();
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (!a.startsWith("-agentlib") && !a.startsWith("-javaagent")) out.add(a);
    }
    return out;
  }

  static CaseResult runChild(Planned p, Options o) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvmOptions());
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(FlinkBench.class.getName());
    cmd.add("--child");
    cmd.add("--reps=" + o.reps);
    cmd.add("--warmup=" + o.warmup);
    cmd.add(p.c().name() + "@" + p.records());
    CaseResult r = new CaseResult(p);
    Process proc = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    try (BufferedReader in = new BufferedReader(
        new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.startsWith("@@run\t")) {
          r.runs.add(Measurement.decode(line));
        } else if (line.startsWith("@@empty\t")) {
          r.empty = Measurement.decode(line.replace("@@empty", "@@run"));
        } else if (!line.startsWith("@@")) {
          System.err.println(line);
        }
      }
    }
    int rc = proc.waitFor();
    if (r.runs.isEmpty()) r.runs.add(Measurement.failed(p.records(), "child JVM exited with " + rc));
    return r;
  }

  static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException | RuntimeException e) {
      return "?";
    }
  }

  static String rate(double r) {
    return r >= 1e6 ? String.format(Locale.ROOT, "%.2f M", r / 1e6)
        : String.format(Locale.ROOT, "%.0f k", r / 1e3);
  }

  static int report(Options o, List<CaseResult> results) {
    int bad = 0;
    if (o.csv) {
      System.out.println("case,group,kind,records,wall_s,cpu_s,cores,records_per_s,"
          + "records_per_core_s,best_per_core_s,spread_pct,peak_rss_kib,outputs,checksum,check,"
          + "gc_s,overhead_cpu_s");
    } else {
      System.out.println();
      System.out.println("| case | records | wall s | cpu s | cores | records/s | records/s/core "
          + "| best/core | spread | GC s | empty-job cpu s | peak RSS MiB | outputs | check |");
      System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    }
    for (CaseResult r : results) {
      List<Measurement> runs = new ArrayList<>(r.runs);
      boolean consistent = true;
      String error = null;
      for (Measurement m : runs) {
        if (!m.ok) error = m.error;
        if (!m.ok || m.outputs != runs.get(0).outputs || m.checksum != runs.get(0).checksum) {
          consistent = false;
        }
      }
      runs.sort(Comparator.comparingDouble(Measurement::perCore));
      Measurement m = runs.get(runs.size() / 2);
      double best = runs.get(runs.size() - 1).perCore();
      double worst = runs.get(0).perCore();
      double pc = m.perCore();
      double spread = pc > 0 ? (best - worst) / pc * 100 : 0;
      double wallRate = m.wallS > 0 ? m.records / m.wallS : 0;
      double cores = m.wallS > 0 ? m.cpuS / m.wallS : 0;
      String check = error != null ? "FAILED: " + error : consistent ? "ok" : "RUNS DIFFER";
      if (!check.equals("ok")) bad++;
      double emptyCpu = r.empty != null && r.empty.ok ? r.empty.cpuS : Double.NaN;
      if (o.csv) {
        System.out.printf(Locale.ROOT,
            "%s,%s,flink,%d,%.4f,%.4f,%.3f,%.1f,%.1f,%.1f,%.1f,%d,%d,%s,%s,%.4f,%.4f%n",
            r.p.c().name(), r.p.c().group(), m.records, m.wallS, m.cpuS, cores, wallRate, pc, best,
            spread, m.rssKib, m.outputs, Long.toUnsignedString(m.checksum),
            check.replace(',', ';'), m.gcS, emptyCpu);
      } else {
        System.out.printf(Locale.ROOT,
            "| %s | %d | %.2f | %.2f | %.2f | %s | %s | %s | %.0f%% | %.2f | %.2f | %.0f | %d | %s |%n",
            r.p.c().name(), m.records, m.wallS, m.cpuS, cores, rate(wallRate), rate(pc),
            rate(best), spread, m.gcS, emptyCpu, m.rssKib / 1024.0, m.outputs, check);
      }
    }
    String end = String.format(Locale.ROOT, "load average at the end: %s%n", loadAverage());
    if (o.csv) {
      System.err.print(end);
    } else {
      System.out.println();
      System.out.print(end);
      System.out.println("records/s/core = records / (CPU s of the whole JVM during the job: task "
          + "threads, GC, JIT, cluster services), median run; GC s = collector time in that run; "
          + "empty-job cpu s = CPU s of the same job over 0 records (submission, deployment, "
          + "teardown), included in every run's cpu s; peak RSS = VmHWM of the case's JVM.");
    }
    return bad == 0 ? 0 : 2;
  }
}
