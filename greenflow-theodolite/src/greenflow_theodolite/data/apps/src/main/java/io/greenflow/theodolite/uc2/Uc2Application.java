package io.greenflow.theodolite.uc2;

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
 * Theodolite's UC2, "downsampling": the input records of each sensor (the Kafka key) are
 * grouped into tumbling windows of event time (the record's {@code timestamp}) of
 * {@code DOWNSAMPLE_INTERVAL_MINUTES} (1), or {@code DOWNSAMPLE_INTERVAL_MS} when set, with
 * no grace period (a record for a window that has ended in stream time is dropped), and the
 * statistics of their {@code valueInW} are written to {@code KAFKA_OUTPUT_TOPIC} (output),
 * key = the sensor's identifier, value = a JSON string:
 *
 * <pre>{@code
 * {"identifier":"s_0","windowStart":1700000000000,"windowEnd":1700000060000,
 *  "count":60,"mean":10.0,"populationVariance":0.0,"populationStandardDeviation":0.0,
 *  "min":10.0,"max":10.0}
 * }</pre>
 *
 * <p>windowStart inclusive, windowEnd exclusive (epoch ms); variance is the population one
 * (divided by count). As in Theodolite, the output is the windowed aggregate's update stream
 * (no suppression): a window's figures may be written more than once (at most once per commit
 * interval and key while the record cache holds them), the last write being the final one.
 * Its store is {@code downsample-stats} (changelog {@code <APPLICATION_ID>-downsample-stats-
 * changelog}). The commit interval is Kafka Streams' default (30 s) unless
 * {@code COMMIT_INTERVAL_MS} is set.
 * Topic {@code KAFKA_INPUT_TOPIC} (input); the rest of the environment: {@link StreamsApp}.
 */
public final class Uc2Application {
  private Uc2Application() {}

  public static void main(String[] args) {
    String input = Env.get("KAFKA_INPUT_TOPIC", "input");
    String output = Env.get("KAFKA_OUTPUT_TOPIC", "output");
    long windowMs = Env.millis("DOWNSAMPLE_INTERVAL_MS", "DOWNSAMPLE_INTERVAL_MINUTES", 60_000, 1);

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(
            input,
            Consumed.with(Serdes.String(), new ActivePowerRecordSerde(StreamsApp.registryUrl()))
                .withTimestampExtractor(new RecordTimestamp()))
        .mapValues(r -> r.valueInW())
        .groupByKey(Grouped.with(Serdes.String(), Serdes.Double()))
        .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(windowMs)))
        .aggregate(
            () -> Stats.EMPTY,
            (key, value, stats) -> stats.add(value),
            Materialized.<String, Stats, WindowStore<Bytes, byte[]>>as("downsample-stats")
                .withKeySerde(Serdes.String())
                .withValueSerde(Stats.serde()))
        .toStream()
        .map((window, stats) -> KeyValue.pair(window.key(), toJson(window, stats)))
        .to(output, Produced.with(Serdes.String(), Serdes.String()));

    StreamsApp.run(2, builder.build(), null, new Properties());
  }

  static String toJson(Windowed<String> window, Stats stats) {
    StringBuilder b = new StringBuilder(256).append('{');
    Json.string(Json.field(b, "identifier", true), window.key());
    Json.field(b, "windowStart", false).append(window.window().start());
    Json.field(b, "windowEnd", false).append(window.window().end());
    return stats.appendJsonFields(b).append('}').toString();
  }
}
