package io.greenflow.theodolite.uc1;

import io.greenflow.theodolite.common.ActivePowerRecord;
import io.greenflow.theodolite.common.ActivePowerRecordSerde;
import io.greenflow.theodolite.common.Env;
import io.greenflow.theodolite.common.Out;
import io.greenflow.theodolite.common.RecordTimestamp;
import io.greenflow.theodolite.common.StreamsApp;
import java.util.Properties;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;

/**
 * Theodolite's UC1, "database storage": every input record is converted to JSON and written
 * to a database, here a sink chosen with {@code UC1_OUTPUT}:
 *
 * <ul>
 *   <li>{@code summary} (default): the records are counted, and every
 *       {@code UC1_SUMMARY_INTERVAL_MS} (5000) a line {@code greenflow-theodolite-uc1 t=<unix
 *       ms> records=<total> interval_records=<since the last line>} is printed (a line per
 *       record would cost more than the processing at 100k records/s);
 *   <li>{@code stdout}: each record's JSON, one line each,
 *       {@code {"identifier":"s_0","timestamp":1700000000000,"valueInW":10.0}}.
 * </ul>
 *
 * <p>Topic {@code KAFKA_INPUT_TOPIC} (input); commit interval 5000 ms unless
 * {@code COMMIT_INTERVAL_MS}; the rest of the environment: {@link StreamsApp}.
 */
public final class Uc1Application {
  private Uc1Application() {}

  public static void main(String[] args) {
    String input = Env.get("KAFKA_INPUT_TOPIC", "input");
    String mode = Env.get("UC1_OUTPUT", "summary");
    long interval = Env.getLong("UC1_SUMMARY_INTERVAL_MS", 5000);
    boolean stdout;
    if (mode.equalsIgnoreCase("stdout")) {
      stdout = true;
    } else if (mode.equalsIgnoreCase("summary")) {
      stdout = false;
    } else {
      throw new IllegalArgumentException("UC1_OUTPUT=" + mode + ": expected summary or stdout");
    }
    LongAdder written = new LongAdder();

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            input,
            Consumed.with(Serdes.String(), new ActivePowerRecordSerde(StreamsApp.registryUrl()))
                .withTimestampExtractor(new RecordTimestamp()))
        .mapValues(ActivePowerRecord::toJson)
        .foreach(
            (key, json) -> {
              if (stdout) {
                Out.data(json);
              }
              written.increment();
            });
    Topology topology = builder.build();

    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "uc1-sink");
              t.setDaemon(true);
              return t;
            });
    long[] last = {0};
    Runnable summary =
        () -> {
          long total = written.sum();
          Out.status(
              "greenflow-theodolite-uc1 t=" + System.currentTimeMillis() + " records=" + total
                  + " interval_records=" + (total - last[0]));
          last[0] = total;
        };
    if (stdout) {
      timer.scheduleAtFixedRate(Out::flush, 200, 200, TimeUnit.MILLISECONDS);
    } else {
      timer.scheduleAtFixedRate(summary, interval, interval, TimeUnit.MILLISECONDS);
    }
    StreamsApp.run(
        1,
        topology,
        5000L,
        new Properties(),
        () -> {
          timer.shutdownNow();
          try {
            timer.awaitTermination(2, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          Out.flush();
          if (!stdout) {
            summary.run();
          }
        });
  }
}
