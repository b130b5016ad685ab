package io.greenflow.theodolite.flink.uc1;

import io.greenflow.theodolite.common.ActivePowerRecord;
import io.greenflow.theodolite.common.Env;
import io.greenflow.theodolite.common.Out;
import io.greenflow.theodolite.common.Signals;
import io.greenflow.theodolite.common.WireFormat;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.AbstractDeserializationSchema;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Theodolite's UC1, "database storage", on Apache Flink: every input record is converted to
 * JSON and written to a sink; here, as in the Kafka Streams UC1 ({@code UC1_OUTPUT}), counted
 * ({@code summary}: a line {@code greenflow-theodolite-uc1 t=<unix ms> records=<total>
 * interval_records=<n>} every {@code UC1_SUMMARY_INTERVAL_MS}, 5000) or printed
 * ({@code stdout}).
 *
 * <p>The job runs in a local Flink MiniCluster inside this JVM with {@code PARALLELISM} (1)
 * slots and tasks, Theodolite's Flink variable. It reads {@code KAFKA_INPUT_TOPIC} (input) of
 * {@code KAFKA_BOOTSTRAP_SERVERS} from the earliest offset with the consumer group
 * {@code APPLICATION_ID} (theodolite-uc1-application-0.0.1), and commits its offsets to Kafka
 * when a checkpoint completes, every {@code CHECKPOINTING_INTERVAL_MS} (1000): the consumer
 * lag GreenFlow reads is that of these commits. Records are decoded from the schema
 * registry's wire format with the reader schema of {@code ActivePowerRecord}, without the
 * registry (every writer here uses that one schema). Prints {@code
 * greenflow-theodolite-app-started uc=1 engine=flink} once the job runs; SIGTERM cancels it
 * and exits 0.
 */
public final class Uc1FlinkJob {
  /** Records written by the sink's instances in this JVM (the MiniCluster's). */
  static final LongAdder WRITTEN = new LongAdder();

  private Uc1FlinkJob() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = Env.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
    String input = Env.get("KAFKA_INPUT_TOPIC", "input");
    String group = Env.get("APPLICATION_ID", "theodolite-uc1-application-0.0.1");
    int parallelism = Env.getInt("PARALLELISM", 1);
    long checkpointMs = Env.getLong("CHECKPOINTING_INTERVAL_MS", 1000);
    long interval = Env.getLong("UC1_SUMMARY_INTERVAL_MS", 5000);
    boolean stdout = Env.get("UC1_OUTPUT", "summary").equalsIgnoreCase("stdout");

    Configuration conf = new Configuration();
    conf.set(TaskManagerOptions.NUM_TASK_SLOTS, parallelism);
    // The MiniCluster shares the JVM's heap (the -Xmx GreenFlow gives it): small pools.
    conf.set(TaskManagerOptions.MANAGED_MEMORY_SIZE, MemorySize.parse("32m"));
    conf.set(TaskManagerOptions.NETWORK_MEMORY_MIN, MemorySize.parse("16m"));
    conf.set(TaskManagerOptions.NETWORK_MEMORY_MAX, MemorySize.parse("16m"));
    StreamExecutionEnvironment env =
        StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
    env.enableCheckpointing(checkpointMs);

    KafkaSource<ActivePowerRecord> source =
        KafkaSource.<ActivePowerRecord>builder()
            .setBootstrapServers(bootstrap)
            .setTopics(input)
            .setGroupId(group)
            .setStartingOffsets(OffsetsInitializer.earliest())
            .setValueOnlyDeserializer(new WireFormatRecords())
            .setProperty("commit.offsets.on.checkpoint", "true")
            .build();
    env.fromSource(source, WatermarkStrategy.noWatermarks(), "input")
        .map(ActivePowerRecord::toJson)
        .sinkTo(new CountingSink(stdout))
        .name("uc1-sink");

    CountDownLatch stop = new CountDownLatch(1);
    Signals.onStop(stop::countDown);
    JobClient job = env.executeAsync("theodolite-uc1-flink");
    Out.status("greenflow-theodolite-app-started uc=1 engine=flink");

    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "uc1-summary");
              t.setDaemon(true);
              return t;
            });
    long[] last = {0};
    if (!stdout) {
      timer.scheduleAtFixedRate(
          () -> {
            long total = WRITTEN.sum();
            Out.status(
                "greenflow-theodolite-uc1 t=" + System.currentTimeMillis() + " records=" + total
                    + " interval_records=" + (total - last[0]));
            last[0] = total;
          },
          interval,
          interval,
          TimeUnit.MILLISECONDS);
    }
    while (!stop.await(1, TimeUnit.SECONDS)) {
      if (job.getJobStatus().get().isGloballyTerminalState()) {
        Out.status("greenflow-theodolite-app-failed status=" + job.getJobStatus().get());
        System.exit(1);
      }
    }
    job.cancel().get(30, TimeUnit.SECONDS);
    Out.flush();
    System.exit(0);
  }

  /** {@code ActivePowerRecord}s in the schema registry's wire format. */
  static final class WireFormatRecords extends AbstractDeserializationSchema<ActivePowerRecord> {
    private static final long serialVersionUID = 1L;

    @Override
    public ActivePowerRecord deserialize(byte[] message) throws IOException {
      return WireFormat.decode(message);
    }
  }

  /** The "database": counts (and with {@code stdout} prints) each record's JSON. */
  static final class CountingSink implements Sink<String> {
    private static final long serialVersionUID = 1L;
    private final boolean stdout;

    CountingSink(boolean stdout) {
      this.stdout = stdout;
    }

    @Override
    public SinkWriter<String> createWriter(WriterInitContext context) {
      return new SinkWriter<>() {
        @Override
        public void write(String json, Context ctx) {
          if (stdout) {
            Out.data(json);
          }
          WRITTEN.increment();
        }

        @Override
        public void flush(boolean endOfInput) {
          Out.flush();
        }

        @Override
        public void close() {}
      };
    }
  }
}
