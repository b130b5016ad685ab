package io.greenflow.theodolite.common;

/**
 * The Avro schemas of Theodolite's records, as registered with the schema registry.
 *
 * <p>Assumed from Theodolite's documentation (its IDL is not copied): namespace
 * {@code titan.ccp.model.records}, records {@code ActivePowerRecord} and
 * {@code AggregatedActivePowerRecord}, fields in this order. Only ActivePowerRecord travels
 * in Avro here (the input topic); UC4 writes its aggregates as JSON.
 */
public final class Schemas {
  private Schemas() {}

  public static final String NAMESPACE = "titan.ccp.model.records";

  /** string identifier; long timestamp (epoch ms); double valueInW. */
  public static final String ACTIVE_POWER_RECORD =
      "{\"type\":\"record\",\"name\":\"ActivePowerRecord\",\"namespace\":\"" + NAMESPACE + "\","
          + "\"fields\":["
          + "{\"name\":\"identifier\",\"type\":\"string\"},"
          + "{\"name\":\"timestamp\",\"type\":\"long\"},"
          + "{\"name\":\"valueInW\",\"type\":\"double\"}]}";

  /** string identifier; long timestamp; long count; double sumInW; double averageInW. */
  public static final String AGGREGATED_ACTIVE_POWER_RECORD =
      "{\"type\":\"record\",\"name\":\"AggregatedActivePowerRecord\",\"namespace\":\""
          + NAMESPACE
          + "\",\"fields\":["
          + "{\"name\":\"identifier\",\"type\":\"string\"},"
          + "{\"name\":\"timestamp\",\"type\":\"long\"},"
          + "{\"name\":\"count\",\"type\":\"long\"},"
          + "{\"name\":\"sumInW\",\"type\":\"double\"},"
          + "{\"name\":\"averageInW\",\"type\":\"double\"}]}";
}
