package io.greenflow.theodolite.uc4;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.greenflow.theodolite.common.Json;
import io.greenflow.theodolite.common.RecordTimestamp;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * UC4's output: a group's aggregate over one emit period, written as JSON (not Avro) on the
 * output and feedback topics:
 *
 * <pre>{@code
 * {"identifier":"g_1_0","timestamp":1700000005000,"windowStart":1700000005000,
 *  "windowEnd":1700000010000,"count":4,"sumInW":40.0,"averageInW":10.0}
 * }</pre>
 *
 * <p>The fields of Theodolite's {@code AggregatedActivePowerRecord} ({@code identifier},
 * {@code timestamp}, {@code count}, {@code sumInW}, {@code averageInW}; see
 * {@link io.greenflow.theodolite.common.Schemas#AGGREGATED_ACTIVE_POWER_RECORD}) plus the
 * window. {@code timestamp} is the window's start, {@code count} the number of direct children
 * (sensors or groups) with a value in the window.
 */
public record AggregatedActivePowerRecord(
    String identifier,
    long timestamp,
    long windowEnd,
    long count,
    double sumInW,
    double averageInW)
    implements RecordTimestamp.Timestamped {
  private static final ObjectMapper JSON = new ObjectMapper();

  public String toJson() {
    StringBuilder b = new StringBuilder(200).append('{');
    Json.string(Json.field(b, "identifier", true), identifier);
    Json.field(b, "timestamp", false).append(timestamp);
    Json.field(b, "windowStart", false).append(timestamp);
    Json.field(b, "windowEnd", false).append(windowEnd);
    Json.field(b, "count", false).append(count);
    Json.number(Json.field(b, "sumInW", false), sumInW);
    Json.number(Json.field(b, "averageInW", false), averageInW);
    return b.append('}').toString();
  }

  public static AggregatedActivePowerRecord fromJson(String json) throws IOException {
    JsonNode n = JSON.readTree(json);
    if (n == null || !n.path("identifier").isTextual() || !n.path("timestamp").canConvertToLong()) {
      throw new IOException("not an AggregatedActivePowerRecord: " + json);
    }
    long ts = n.get("timestamp").asLong();
    return new AggregatedActivePowerRecord(
        n.get("identifier").asText(),
        ts,
        n.path("windowEnd").asLong(ts),
        n.path("count").asLong(),
        n.path("sumInW").asDouble(),
        n.path("averageInW").asDouble());
  }

  /** UTF-8 JSON. */
  public static Serde<AggregatedActivePowerRecord> serde() {
    Serializer<AggregatedActivePowerRecord> ser =
        (topic, r) -> r == null ? null : r.toJson().getBytes(StandardCharsets.UTF_8);
    Deserializer<AggregatedActivePowerRecord> de =
        (topic, data) -> {
          if (data == null) {
            return null;
          }
          try {
            return fromJson(new String(data, StandardCharsets.UTF_8));
          } catch (IOException e) {
            throw new SerializationException("bad aggregate on " + topic + ": " + e.getMessage(), e);
          }
        };
    return Serdes.serdeFrom(ser, de);
  }
}
