package io.greenflow.theodolite.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.greenflow.theodolite.common.Env;
import io.greenflow.theodolite.common.Out;
import io.greenflow.theodolite.common.Signals;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;

/**
 * The schema registry stand-in of the Kubernetes images (the process {@code
 * confluentinc/cp-schema-registry} runs in GreenFlow's test images): the part of Confluent
 * Schema Registry's REST API that Avro serdes use, in memory. Locally GreenFlow runs its
 * Python stand-in ({@code greenflow_theodolite.registry}, the fuller one); both answer the
 * same shapes and error codes for these endpoints:
 *
 * <ul>
 *   <li>{@code POST /subjects/{s}/versions} → {@code {"id"}} (the same schema text gets the
 *       same id in every subject, and no new version in a subject that has it);
 *   <li>{@code POST /subjects/{s}} (lookup) → {@code {"subject","id","version","schema"}};
 *   <li>{@code GET /schemas/ids/{id}} → {@code {"schema"}}; {@code GET /subjects}; {@code GET
 *       /subjects/{s}/versions}; {@code GET /subjects/{s}/versions/{v|latest|-1}};
 *   <li>{@code GET /config} → {@code {"compatibilityLevel":"BACKWARD"}}; {@code GET /} → {@code
 *       {}}; errors as {@code {"error_code","message"}} (40401, 40402, 40403, 42201).
 * </ul>
 *
 * <p>Listens on the port of {@code SCHEMA_REGISTRY_LISTENERS} (Confluent's image's variable,
 * e.g. {@code http://0.0.0.0:8081}; default 8081); the {@code SCHEMA_REGISTRY_KAFKASTORE_*}
 * settings are ignored: nothing is stored in Kafka, a restart forgets every schema. Prints
 * {@code greenflow-schema-registry-ready url=...} once listening; exits 0 on SIGTERM.
 */
public final class SchemaRegistryStandIn {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

  /** Schema texts by id (ids from 1), and each subject's versions as schema ids. */
  private final List<String> schemas = new ArrayList<>();
  private final Map<String, List<Integer>> subjects = new LinkedHashMap<>();

  public static void main(String[] args) throws Exception {
    int port = port(Env.get("SCHEMA_REGISTRY_LISTENERS", "http://0.0.0.0:8081"));
    HttpServer server = HttpServer.create(new InetSocketAddress(port), 64);
    SchemaRegistryStandIn registry = new SchemaRegistryStandIn();
    server.createContext("/", registry::handle);
    server.setExecutor(Executors.newFixedThreadPool(4));
    CountDownLatch stop = new CountDownLatch(1);
    Signals.onStop(stop::countDown);
    server.start();
    String host = Env.get("SCHEMA_REGISTRY_HOST_NAME", "127.0.0.1");
    Out.status(
        "greenflow-schema-registry-ready url=http://" + host + ":" + server.getAddress().getPort());
    stop.await();
    server.stop(0);
    System.exit(0);
  }

  /** The port of the first listener URL in {@code listeners} (comma-separated). */
  static int port(String listeners) {
    String first = listeners.split(",")[0].trim();
    int p = URI.create(first).getPort();
    return p < 0 ? 8081 : p;
  }

  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      int[] status = {200};
      JsonNode answer;
      try {
        answer = route(ex.getRequestMethod(), ex.getRequestURI().getRawPath(), body(ex), status);
      } catch (Failure f) {
        status[0] = f.status;
        ObjectNode err = JSON.createObjectNode();
        err.put("error_code", f.code);
        err.put("message", f.getMessage());
        answer = err;
      }
      byte[] bytes = JSON.writeValueAsBytes(answer);
      ex.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
      ex.sendResponseHeaders(status[0], bytes.length);
      try (OutputStream out = ex.getResponseBody()) {
        out.write(bytes);
      }
    }
  }

  private static JsonNode body(HttpExchange ex) throws IOException {
    try (InputStream in = ex.getRequestBody()) {
      byte[] raw = in.readAllBytes();
      if (raw.length == 0) {
        return JSON.createObjectNode();
      }
      try {
        return JSON.readTree(raw);
      } catch (IOException e) {
        throw new Failure(422, 42201, "Invalid request body: " + e.getMessage());
      }
    }
  }

  private synchronized JsonNode route(String method, String rawPath, JsonNode body, int[] status) {
    List<String> p = new ArrayList<>();
    for (String part : rawPath.split("/")) {
      if (!part.isEmpty()) {
        p.add(URLDecoder.decode(part, StandardCharsets.UTF_8));
      }
    }
    boolean get = method.equals("GET");
    boolean post = method.equals("POST");
    if (p.isEmpty() && (get || post)) {
      return JSON.createObjectNode();
    }
    if (get && p.size() == 1 && p.get(0).equals("config")) {
      return JSON.createObjectNode().put("compatibilityLevel", "BACKWARD");
    }
    if (get && p.size() == 3 && p.get(0).equals("schemas") && p.get(1).equals("ids")) {
      return JSON.createObjectNode().put("schema", schemaById(p.get(2)));
    }
    if (p.get(0).equals("subjects")) {
      if (get && p.size() == 1) {
        ArrayNode names = JSON.createArrayNode();
        subjects.keySet().forEach(names::add);
        return names;
      }
      if (post && p.size() == 3 && p.get(2).equals("versions")) {
        return JSON.createObjectNode().put("id", register(p.get(1), schemaText(body)));
      }
      if (post && p.size() == 2) {
        return lookup(p.get(1), schemaText(body));
      }
      if (get && p.size() == 3 && p.get(2).equals("versions")) {
        ArrayNode versions = JSON.createArrayNode();
        for (int v = 1; v <= versions(p.get(1)).size(); v++) {
          versions.add(v);
        }
        return versions;
      }
      if (get && p.size() == 4 && p.get(2).equals("versions")) {
        List<Integer> ids = versions(p.get(1));
        int v = version(p.get(3), ids.size());
        return payload(p.get(1), v, ids.get(v - 1));
      }
    }
    throw new Failure(404, 404, "HTTP 404 Not Found");
  }

  private int register(String subject, String schema) {
    int id = schemas.indexOf(schema) + 1;
    if (id == 0) {
      schemas.add(schema);
      id = schemas.size();
    }
    List<Integer> ids = subjects.computeIfAbsent(subject, s -> new ArrayList<>());
    if (!ids.contains(id)) {
      ids.add(id);
    }
    return id;
  }

  private JsonNode lookup(String subject, String schema) {
    List<Integer> ids = versions(subject);
    int id = schemas.indexOf(schema) + 1;
    int v = ids.indexOf(id) + 1;
    if (id == 0 || v == 0) {
      throw new Failure(404, 40403, "Schema not found");
    }
    return payload(subject, v, id);
  }

  private ObjectNode payload(String subject, int version, int id) {
    ObjectNode out = JSON.createObjectNode();
    out.put("subject", subject);
    out.put("version", version);
    out.put("id", id);
    out.put("schema", schemas.get(id - 1));
    return out;
  }

  private List<Integer> versions(String subject) {
    List<Integer> ids = subjects.get(subject);
    if (ids == null) {
      throw new Failure(404, 40401, "Subject '" + subject + "' not found.");
    }
    return ids;
  }

  private static int version(String raw, int latest) {
    if (raw.equals("latest") || raw.equals("-1")) {
      return latest;
    }
    try {
      int v = Integer.parseInt(raw);
      if (v >= 1 && v <= latest) {
        return v;
      }
    } catch (NumberFormatException e) {
      throw new Failure(422, 42202, "The specified version '" + raw + "' is not a valid version id.");
    }
    throw new Failure(404, 40402, "Version " + raw + " not found.");
  }

  private String schemaById(String raw) {
    try {
      int id = Integer.parseInt(raw);
      if (id >= 1 && id <= schemas.size()) {
        return schemas.get(id - 1);
      }
    } catch (NumberFormatException e) {
      // answered as not found below, as Confluent's server does
    }
    throw new Failure(404, 40403, "Schema " + raw + " not found");
  }

  /** The request's schema, canonical (parsed and re-written) when it is JSON. */
  private static String schemaText(JsonNode body) {
    JsonNode schema = body.get("schema");
    if (schema == null || !schema.isTextual() || schema.textValue().isBlank()) {
      throw new Failure(422, 42201, "Empty schema");
    }
    try {
      return JSON.writeValueAsString(JSON.readTree(schema.textValue()));
    } catch (IOException e) {
      throw new Failure(422, 42201, "Invalid schema: " + e.getMessage());
    }
  }

  /** An error answer: HTTP status and Confluent's error code. */
  private static final class Failure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final int status;
    final int code;

    Failure(int status, int code, String message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }
}
