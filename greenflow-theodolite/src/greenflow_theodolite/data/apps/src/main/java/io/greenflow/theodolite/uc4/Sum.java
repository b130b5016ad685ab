package io.greenflow.theodolite.uc4;

import java.nio.ByteBuffer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * A group's aggregate over one window while it is built: how many children's last values it
 * holds and their sum. Children are added and, when their last value is replaced, subtracted
 * (Kafka Streams' table aggregation), so the sum is exact for values exactly representable in
 * binary and within rounding otherwise.
 */
public record Sum(long count, double sumInW) {
  public static final Sum EMPTY = new Sum(0, 0.0);

  public Sum plus(LastValue v) {
    return new Sum(count + 1, sumInW + v.valueInW());
  }

  public Sum minus(LastValue v) {
    return count <= 1 ? EMPTY : new Sum(count - 1, sumInW - v.valueInW());
  }

  public static Serde<Sum> serde() {
    Serializer<Sum> ser =
        (topic, s) ->
            s == null ? null : ByteBuffer.allocate(16).putLong(s.count).putDouble(s.sumInW).array();
    Deserializer<Sum> de =
        (topic, data) -> {
          if (data == null) {
            return null;
          }
          ByteBuffer b = ByteBuffer.wrap(data);
          return new Sum(b.getLong(), b.getDouble());
        };
    return Serdes.serdeFrom(ser, de);
  }
}
