package io.greenflow.theodolite.uc4;

import io.greenflow.theodolite.common.RecordTimestamp;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * A child's reading as UC4 aggregates it: a sensor's {@code valueInW}, or a child group's
 * {@code sumInW} coming back through the feedback topic.
 */
public record LastValue(String identifier, long timestamp, double valueInW)
    implements RecordTimestamp.Timestamped {

  /** The newer of two readings (by timestamp; on a tie the later one, {@code next}). */
  public static LastValue newer(LastValue previous, LastValue next) {
    return next.timestamp >= previous.timestamp ? next : previous;
  }

  /** timestamp (8 bytes), valueInW (8), identifier (UTF-8, the rest). */
  public static Serde<LastValue> serde() {
    Serializer<LastValue> ser =
        (topic, v) -> {
          if (v == null) {
            return null;
          }
          byte[] id = v.identifier.getBytes(StandardCharsets.UTF_8);
          return ByteBuffer.allocate(16 + id.length)
              .putLong(v.timestamp)
              .putDouble(v.valueInW)
              .put(id)
              .array();
        };
    Deserializer<LastValue> de =
        (topic, data) -> {
          if (data == null) {
            return null;
          }
          ByteBuffer b = ByteBuffer.wrap(data);
          long ts = b.getLong();
          double value = b.getDouble();
          return new LastValue(
              new String(data, 16, data.length - 16, StandardCharsets.UTF_8), ts, value);
        };
    return Serdes.serdeFrom(ser, de);
  }
}
