package io.greenflow.theodolite.common;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serializer;

/**
 * ActivePowerRecord in the schema registry's wire format ({@link WireFormat}).
 *
 * <p>Reading takes the schema id from each message and decodes the fields in
 * {@link Schemas#ACTIVE_POWER_RECORD}'s order. The first time an id is seen, and if a registry
 * URL was given, the registered schema is fetched once and compared: a different record name
 * or field list is reported on stderr (once), never fatal. Writing registers the schema under
 * {@code <topic>-value} on first use per topic.
 */
public final class ActivePowerRecordSerde implements Serde<ActivePowerRecord> {
  private final SchemaRegistryClient registry;
  private final Set<Integer> checked = ConcurrentHashMap.newKeySet();
  private final Map<String, Integer> ids = new ConcurrentHashMap<>();

  /** {@code registryUrl} may be null: no check when reading, no writing. */
  public ActivePowerRecordSerde(String registryUrl) {
    this.registry = registryUrl == null ? null : new SchemaRegistryClient(registryUrl);
  }

  @Override
  public Serializer<ActivePowerRecord> serializer() {
    return (topic, record) -> {
      if (record == null) {
        return null;
      }
      if (registry == null) {
        throw new SerializationException("writing ActivePowerRecord needs a schema registry");
      }
      Integer id =
          ids.computeIfAbsent(
              topic,
              t -> {
                try {
                  return registry.registerWithRetry(
                      t + "-value", Schemas.ACTIVE_POWER_RECORD, 30_000);
                } catch (Exception e) {
                  throw new SerializationException("registering " + t + "-value failed", e);
                }
              });
      return WireFormat.encode(id, record);
    };
  }

  @Override
  public Deserializer<ActivePowerRecord> deserializer() {
    return (topic, data) -> {
      if (data == null) {
        return null;
      }
      try {
        int id = WireFormat.schemaId(data);
        if (registry != null && checked.add(id)) {
          check(id);
        }
        return WireFormat.decode(data);
      } catch (IllegalArgumentException e) {
        throw new SerializationException("bad ActivePowerRecord on " + topic + ": " + e.getMessage(), e);
      }
    };
  }

  private void check(int id) {
    try {
      ObjectMapper json = new ObjectMapper();
      JsonNode got = json.readTree(registry.schema(id));
      JsonNode want = json.readTree(Schemas.ACTIVE_POWER_RECORD);
      if (!fields(got).equals(fields(want))) {
        System.err.println(
            "greenflow-theodolite: WARNING: schema id " + id + " is " + got
                + ", not ActivePowerRecord's " + want + "; decoding it as ActivePowerRecord");
      }
    } catch (Exception e) {
      System.err.println(
          "greenflow-theodolite: WARNING: could not read schema id " + id + " from "
              + registry.url() + " (" + e + "); decoding it as ActivePowerRecord");
    }
  }

  private static String fields(JsonNode schema) {
    StringBuilder b = new StringBuilder(String.valueOf(schema.path("name").asText()));
    for (JsonNode f : schema.path("fields")) {
      b.append(';').append(f.path("name").asText()).append(':').append(f.path("type"));
    }
    return b.toString();
  }
}
