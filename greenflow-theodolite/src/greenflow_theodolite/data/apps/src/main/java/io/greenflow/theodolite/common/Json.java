package io.greenflow.theodolite.common;

/** Writing JSON by hand: the few value kinds the applications print, cheaply. */
public final class Json {
  private Json() {}

  /** Appends {@code s} as a JSON string. */
  public static StringBuilder string(StringBuilder b, String s) {
    b.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"');
  }

  /** Appends {@code d} as a JSON number, or null when it is NaN or infinite. */
  public static StringBuilder number(StringBuilder b, double d) {
    if (Double.isNaN(d) || Double.isInfinite(d)) {
      return b.append("null");
    }
    return b.append(d);
  }

  /** Appends {@code "name":} (after a comma unless {@code first}). */
  public static StringBuilder field(StringBuilder b, String name, boolean first) {
    if (!first) {
      b.append(',');
    }
    return string(b, name).append(':');
  }
}
