package io.greenflow.theodolite.uc3;

import io.greenflow.theodolite.common.ActivePowerRecordSerde;
import io.greenflow.theodolite.common.Env;
import io.greenflow.theodolite.common.Json;
import io.greenflow.theodolite.common.RecordTimestamp;
import io.greenflow.theodolite.common.Stats;
import io.greenflow.theodolite.common.StreamsApp;
import java.time.Duration;
import java.util.Properties;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Theodolite's UC3, "time attribute aggregation": each input record is keyed by its sensor
 * and the hour of day of its {@code timestamp}, <b>in UTC</b> (0-23), as the string
 * {@code "<identifier>;<hour>"} (a repartition follows); per key, hopping windows of event
 * time of {@code AGGREGATION_DURATION_DAYS} (30) advancing by {@code AGGREGATION_ADVANCE_DAYS}
 * (1) (or {@code AGGREGATION_DURATION_MS} / {@code AGGREGATION_ADVANCE_MS} when set), no grace
 * period, collect the statistics of {@code valueInW}; they are written to
 * {@code KAFKA_OUTPUT_TOPIC} (output), key {@code "<identifier>;<hour>"}, value a JSON string:
 *
 * <pre>{@code
 * {"identifier":"s_0","hourOfDay":13,"windowStart":1697414400000,"windowEnd":1700006400000,
 *  "count":30,"mean":10.0,"populationVariance":0.0,"populationStandardDeviation":0.0,
 *  "min":10.0,"max":10.0}
 * }</pre>
 *
 * <p>Windows are aligned to the epoch (starts are multiples of the advance); each record is in
 * duration / advance windows. As in UC2, the output is the update stream of the windowed
 * aggregate, the last write per key and window being final. Internal topics (prefixed with the
 * application id): {@code hour-of-day-repartition}, {@code hour-of-day-stats-changelog}. The
 * commit interval is Kafka Streams' default (30 s) unless {@code COMMIT_INTERVAL_MS} is set.
 * Topic {@code KAFKA_INPUT_TOPIC}
 * (input); the rest of the environment: {@link StreamsApp}.
 */
public final class Uc3Application {
  private static final long DAY_MS = 86_400_000L;
  private static final long HOUR_MS = 3_600_000L;

  private Uc3Application() {}

  /** The hour of day (UTC) of an epoch-ms timestamp. */
  static int hourOfDay(long timestampMs) {
    return (int) Math.floorMod(Math.floorDiv(timestampMs, HOUR_MS), 24L);
  }

  public static void main(String[] args) {
    String input = Env.get("KAFKA_INPUT_TOPIC", "input");
    String output = Env.get("KAFKA_OUTPUT_TOPIC", "output");
    long duration = Env.millis("AGGREGATION_DURATION_MS", "AGGREGATION_DURATION_DAYS", DAY_MS, 30);
    long advance = Env.millis("AGGREGATION_ADVANCE_MS", "AGGREGATION_ADVANCE_DAYS", DAY_MS, 1);

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            input,
            Consumed.with(Serdes.String(), new ActivePowerRecordSerde(StreamsApp.registryUrl()))
                .withTimestampExtractor(new RecordTimestamp()))
        .map(
            (key, r) ->
                KeyValue.pair(r.identifier() + ";" + hourOfDay(r.timestamp()), r.valueInW()))
        .groupByKey(Grouped.with("hour-of-day", Serdes.String(), Serdes.Double()))
        .windowedBy(
            TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(duration))
                .advanceBy(Duration.ofMillis(advance)))
        .aggregate(
            () -> Stats.EMPTY,
            (key, value, stats) -> stats.add(value),
            Materialized.<String, Stats, WindowStore<Bytes, byte[]>>as("hour-of-day-stats")
                .withKeySerde(Serdes.String())
                .withValueSerde(Stats.serde()))
        .toStream()
        .map((window, stats) -> KeyValue.pair(window.key(), toJson(window, stats)))
        .to(output, Produced.with(Serdes.String(), Serdes.String()));

    StreamsApp.run(3, builder.build(), null, new Properties());
  }

  static String toJson(Windowed<String> window, Stats stats) {
    String key = window.key();
    int sep = key.lastIndexOf(';');
    StringBuilder b = new StringBuilder(256).append('{');
    Json.string(Json.field(b, "identifier", true), key.substring(0, sep));
    Json.field(b, "hourOfDay", false).append(key.substring(sep + 1));
    Json.field(b, "windowStart", false).append(window.window().start());
    Json.field(b, "windowEnd", false).append(window.window().end());
    return stats.appendJsonFields(b).append('}').toString();
  }
}
