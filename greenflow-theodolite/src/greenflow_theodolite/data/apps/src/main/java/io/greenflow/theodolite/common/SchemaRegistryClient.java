package io.greenflow.theodolite.common;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;

/**
 * The two calls of the Confluent schema registry's REST API used here, over the JDK's HTTP
 * client: registering a schema under a subject ({@code POST /subjects/{subject}/versions}
 * with {@code {"schema": "<schema JSON as a string>"}}, answered {@code {"id": N}}) and
 * reading a schema by id ({@code GET /schemas/ids/{id}}, answered {@code {"schema": "..."}}).
 */
public final class SchemaRegistryClient {
  private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String baseUrl;
  private final HttpClient http;

  public SchemaRegistryClient(String baseUrl) {
    this.baseUrl = baseUrl.endsWith("/") ? baseUrl.substring(0, baseUrl.length() - 1) : baseUrl;
    this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
  }

  public String url() {
    return baseUrl;
  }

  /** Registers {@code schema} under {@code subject} (e.g. {@code input-value}); its id. */
  public int register(String subject, String schema) throws IOException, InterruptedException {
    String body = JSON.writeValueAsString(Map.of("schema", schema));
    HttpRequest req =
        HttpRequest.newBuilder(URI.create(baseUrl + "/subjects/" + subject + "/versions"))
            .timeout(Duration.ofSeconds(10))
            .header("Content-Type", CONTENT_TYPE)
            .header("Accept", CONTENT_TYPE + ", application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    JsonNode answer = send(req);
    JsonNode id = answer.get("id");
    if (id == null || !id.canConvertToInt()) {
      throw new IOException("the schema registry's answer has no id: " + answer);
    }
    return id.intValue();
  }

  /**
   * Registers {@code schema}, retrying for up to {@code timeoutMs} while the registry is not
   * reachable or answers 5xx (it may be starting).
   */
  public int registerWithRetry(String subject, String schema, long timeoutMs)
      throws IOException, InterruptedException {
    long deadline = System.currentTimeMillis() + timeoutMs;
    long pause = 200;
    while (true) {
      try {
        return register(subject, schema);
      } catch (IOException e) {
        if (System.currentTimeMillis() + pause > deadline || e instanceof ClientError) {
          throw e;
        }
        Thread.sleep(pause);
        pause = Math.min(pause * 2, 2000);
      }
    }
  }

  /** The schema registered with {@code id}. */
  public String schema(int id) throws IOException, InterruptedException {
    HttpRequest req =
        HttpRequest.newBuilder(URI.create(baseUrl + "/schemas/ids/" + id))
            .timeout(Duration.ofSeconds(5))
            .header("Accept", CONTENT_TYPE + ", application/json")
            .GET()
            .build();
    JsonNode schema = send(req).get("schema");
    if (schema == null || !schema.isTextual()) {
      throw new IOException("the schema registry's answer for id " + id + " has no schema");
    }
    return schema.textValue();
  }

  private JsonNode send(HttpRequest req) throws IOException, InterruptedException {
    HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
    int code = resp.statusCode();
    if (code / 100 != 2) {
      String what = req.method() + " " + req.uri() + " answered " + code + ": " + resp.body();
      throw code / 100 == 4 ? new ClientError(what) : new IOException(what);
    }
    return JSON.readTree(resp.body());
  }

  /** A 4xx answer: retrying will not help. */
  public static final class ClientError extends IOException {
    private static final long serialVersionUID = 1L;

    ClientError(String message) {
      super(message);
    }
  }
}
