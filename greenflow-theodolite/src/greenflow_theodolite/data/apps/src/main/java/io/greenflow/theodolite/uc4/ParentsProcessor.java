package io.greenflow.theodolite.uc4;

import io.greenflow.theodolite.common.Out;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/**
 * Turns each sensor registry on the configuration topic (key 0, SENSOR_REGISTRY_CHANGED, or 1,
 * SENSOR_REGISTRY_STATUS; other keys are ignored) into one record per node but the root: key =
 * the node, value = its direct parents joined with commas; a node no longer in the registry
 * gets a tombstone (null). The nodes of the last registry are remembered in memory (a restart
 * forgets them: nodes removed before it keep their parents).
 */
final class ParentsProcessor implements Processor<Integer, String, String, String> {
  static final int SENSOR_REGISTRY_CHANGED = 0;
  static final int SENSOR_REGISTRY_STATUS = 1;

  private ProcessorContext<String, String> context;
  private Set<String> known = new HashSet<>();

  @Override
  public void init(ProcessorContext<String, String> context) {
    this.context = context;
  }

  @Override
  public void process(Record<Integer, String> record) {
    Integer event = record.key();
    if (record.value() == null
        || event == null
        || (event != SENSOR_REGISTRY_CHANGED && event != SENSOR_REGISTRY_STATUS)) {
      return;
    }
    SensorRegistry registry;
    try {
      registry = SensorRegistry.fromJson(record.value());
    } catch (Exception e) {
      System.err.println("greenflow-theodolite: ignoring a bad sensor registry: " + e);
      return;
    }
    Set<String> now = new HashSet<>();
    for (Map.Entry<String, Set<String>> e : registry.parents().entrySet()) {
      now.add(e.getKey());
      context.forward(record.withKey(e.getKey()).withValue(String.join(",", e.getValue())));
    }
    for (String gone : known) {
      if (!now.contains(gone)) {
        context.forward(record.withKey(gone).withValue((String) null));
      }
    }
    known = now;
    Out.status(
        "greenflow-theodolite-uc4-registry root=" + registry.root() + " groups="
            + registry.groups().size() + " nodes=" + now.size());
  }
}
