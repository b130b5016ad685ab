package io.greenflow.theodolite.loadgen;

import io.greenflow.theodolite.common.Json;

/**
 * The sensor registry UC4's load generator publishes, as JSON: a top-level group {@code root}
 * over {@code levels} levels (Theodolite's {@code NUM_NESTED_GROUPS}): with 1 the sensors are
 * root's children; with 2, root → groups → sensors; and so on. Groups are
 * {@code g_<level>_<n>} (level 1 under root; n counted over the whole tree), sensors
 * {@code s_<n>}, both numbered depth-first. Every group has {@code c} children, c the smallest
 * integer with c^levels ≥ the number of sensors, and the tree is cut at that number of
 * sensors (groups left empty are not written): with sensors = c^levels it is Theodolite's
 * registry of c children per group.
 */
public final class SensorRegistryBuilder {
  private final int sensors;
  private final int levels;
  private final int children;
  private int nextSensor;
  private int nextGroup;

  public SensorRegistryBuilder(int sensors, int levels) {
    if (sensors < 1 || levels < 1) {
      throw new IllegalArgumentException("a registry needs sensors >= 1 and levels >= 1");
    }
    this.sensors = sensors;
    this.levels = levels;
    this.children = childrenPerGroup(sensors, levels);
  }

  /** The smallest c with c^levels >= sensors. */
  static int childrenPerGroup(int sensors, int levels) {
    int c = Math.max(1, (int) Math.floor(Math.pow(sensors, 1.0 / levels)));
    while (Math.pow(c, levels) < sensors) {
      c++;
    }
    while (c > 1 && Math.pow(c - 1, levels) >= sensors) {
      c--;
    }
    return c;
  }

  public int childrenPerGroup() {
    return children;
  }

  public String toJson() {
    nextSensor = 0;
    nextGroup = 0;
    StringBuilder b = new StringBuilder(64 + sensors * 40).append('{');
    Json.string(Json.field(b, "identifier", true), "root");
    Json.string(Json.field(b, "name", false), "root");
    Json.field(b, "children", false).append('[');
    addChildren(b, 1);
    return b.append("]}").toString();
  }

  private void addChildren(StringBuilder b, int level) {
    boolean first = true;
    for (int i = 0; i < children && nextSensor < sensors; i++) {
      if (!first) {
        b.append(',');
      }
      first = false;
      if (level == levels) {
        String id = "s_" + nextSensor++;
        b.append('{');
        Json.string(Json.field(b, "identifier", true), id);
        Json.string(Json.field(b, "name", false), id);
        b.append('}');
      } else {
        String id = "g_" + level + "_" + nextGroup++;
        b.append('{');
        Json.string(Json.field(b, "identifier", true), id);
        Json.string(Json.field(b, "name", false), id);
        Json.field(b, "children", false).append('[');
        addChildren(b, level + 1);
        b.append("]}");
      }
    }
  }
}
