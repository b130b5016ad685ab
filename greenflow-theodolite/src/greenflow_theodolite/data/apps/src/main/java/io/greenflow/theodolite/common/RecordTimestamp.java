package io.greenflow.theodolite.common;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * Event time is the record's own timestamp field (ActivePowerRecord's, or any
 * {@link Timestamped} value's); the Kafka record's timestamp when the value has none or it is
 * negative.
 */
public final class RecordTimestamp implements TimestampExtractor {

  /** A value that carries its event time, epoch ms. */
  public interface Timestamped {
    long timestamp();
  }

  @Override
  public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
    Object v = record.value();
    long ts = -1;
    if (v instanceof ActivePowerRecord r) {
      ts = r.timestamp();
    } else if (v instanceof Timestamped t) {
      ts = t.timestamp();
    }
    if (ts >= 0) {
      return ts;
    }
    return record.timestamp() >= 0 ? record.timestamp() : Math.max(partitionTime, 0);
  }
}
