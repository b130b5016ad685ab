package io.greenflow.theodolite.uc4;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A sensor registry as Theodolite publishes it on the configuration topic: a tree of JSON
 * objects {@code {"identifier": "...", "name": "...", "children": [...]}} whose root is the
 * top-level group; an object with a {@code children} array is a group (an aggregated sensor),
 * one without is a machine sensor. What UC4 needs from it is every node's direct parent
 * groups (a node listed under several groups has several).
 */
public final class SensorRegistry {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String root;
  private final Map<String, Set<String>> parents;
  private final Set<String> groups;

  private SensorRegistry(String root, Map<String, Set<String>> parents, Set<String> groups) {
    this.root = root;
    this.parents = parents;
    this.groups = groups;
  }

  public static SensorRegistry fromJson(String json) throws IOException {
    JsonNode top = JSON.readTree(json);
    if (top == null || !top.isObject() || !top.path("identifier").isTextual()) {
      throw new IOException("a sensor registry is a JSON object with an identifier");
    }
    Map<String, Set<String>> parents = new TreeMap<>();
    Set<String> groups = new TreeSet<>();
    List<JsonNode> todo = new ArrayList<>(List.of(top));
    while (!todo.isEmpty()) {
      JsonNode node = todo.remove(todo.size() - 1);
      String id = node.path("identifier").asText();
      JsonNode children = node.get("children");
      if (children == null || !children.isArray()) {
        continue;
      }
      if (!groups.add(id)) {
        continue; // a group seen before: its subtree is known (and a cycle stops here)
      }
      for (JsonNode child : children) {
        if (!child.path("identifier").isTextual()) {
          throw new IOException("a child of " + id + " has no identifier: " + child);
        }
        parents.computeIfAbsent(child.get("identifier").asText(), k -> new TreeSet<>()).add(id);
        todo.add(child);
      }
    }
    return new SensorRegistry(top.get("identifier").asText(), parents, groups);
  }

  public String root() {
    return root;
  }

  /** Every node but the root, with its direct parents. */
  public Map<String, Set<String>> parents() {
    return parents;
  }

  public Set<String> groups() {
    return groups;
  }
}
