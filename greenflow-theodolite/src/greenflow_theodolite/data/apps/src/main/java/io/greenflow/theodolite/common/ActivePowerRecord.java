package io.greenflow.theodolite.common;

/**
 * Theodolite's input record: a power sensor's reading (Avro record
 * {@code titan.ccp.model.records.ActivePowerRecord}, {@link Schemas#ACTIVE_POWER_RECORD}).
 *
 * @param identifier the sensor, e.g. {@code s_0}
 * @param timestamp when it was measured, epoch ms
 * @param valueInW the active power, W
 */
public record ActivePowerRecord(String identifier, long timestamp, double valueInW) {

  /** {@code {"identifier":"s_0","timestamp":1700000000000,"valueInW":10.0}} */
  public String toJson() {
    StringBuilder b = new StringBuilder(80).append('{');
    Json.string(Json.field(b, "identifier", true), identifier);
    Json.field(b, "timestamp", false).append(timestamp);
    Json.number(Json.field(b, "valueInW", false), valueInW);
    return b.append('}').toString();
  }
}
