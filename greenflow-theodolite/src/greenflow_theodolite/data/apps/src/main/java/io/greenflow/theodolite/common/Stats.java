package io.greenflow.theodolite.common;

import java.nio.ByteBuffer;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Running statistics of a series of values (what Theodolite takes from Guava's {@code Stats}):
 * count, mean, population variance (sum of squared deviations / count), min and max, updated
 * one value at a time with Welford's algorithm. Immutable: {@link #add} returns a new one.
 */
public final class Stats {
  public static final Stats EMPTY = new Stats(0, 0.0, 0.0, Double.NaN, Double.NaN);
  /** Bytes of {@link #serde()}'s encoding. */
  private static final int BYTES = 8 * 5;

  private final long count;
  private final double mean;
  /** Sum of squared deviations from the mean. */
  private final double m2;
  private final double min;
  private final double max;

  private Stats(long count, double mean, double m2, double min, double max) {
    this.count = count;
    this.mean = mean;
    this.m2 = m2;
    this.min = min;
    this.max = max;
  }

  public Stats add(double x) {
    long n = count + 1;
    double delta = x - mean;
    double newMean = mean + delta / n;
    double newM2 = m2 + delta * (x - newMean);
    return new Stats(
        n, newMean, newM2, count == 0 ? x : Math.min(min, x), count == 0 ? x : Math.max(max, x));
  }

  public long count() {
    return count;
  }

  public double mean() {
    return count == 0 ? Double.NaN : mean;
  }

  public double populationVariance() {
    return count == 0 ? Double.NaN : Math.max(0.0, m2 / count);
  }

  public double min() {
    return min;
  }

  public double max() {
    return max;
  }

  /** Appends the statistics as JSON fields (after a comma). */
  public StringBuilder appendJsonFields(StringBuilder b) {
    Json.field(b, "count", false).append(count);
    Json.number(Json.field(b, "mean", false), mean());
    Json.number(Json.field(b, "populationVariance", false), populationVariance());
    Json.number(Json.field(b, "populationStandardDeviation", false), Math.sqrt(populationVariance()));
    Json.number(Json.field(b, "min", false), min);
    Json.number(Json.field(b, "max", false), max);
    return b;
  }

  @Override
  public String toString() {
    return "Stats{count=" + count + ", mean=" + mean() + ", populationVariance="
        + populationVariance() + ", min=" + min + ", max=" + max + "}";
  }

  /** 40 bytes: count, mean, m2, min, max (state stores, changelogs). */
  public static Serde<Stats> serde() {
    Serializer<Stats> ser =
        (topic, s) ->
            s == null
                ? null
                : ByteBuffer.allocate(BYTES)
                    .putLong(s.count)
                    .putDouble(s.mean)
                    .putDouble(s.m2)
                    .putDouble(s.min)
                    .putDouble(s.max)
                    .array();
    Deserializer<Stats> de =
        (topic, data) -> {
          if (data == null) {
            return null;
          }
          ByteBuffer b = ByteBuffer.wrap(data);
          return new Stats(b.getLong(), b.getDouble(), b.getDouble(), b.getDouble(), b.getDouble());
        };
    return Serdes.serdeFrom(ser, de);
  }
}
