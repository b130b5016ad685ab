package io.greenflow.theodolite.common;

/** Settings from environment variables, Theodolite's way of configuring its components. */
public final class Env {
  private Env() {}

  /** The variable's value, or {@code def} when it is unset or blank. */
  public static String get(String name, String def) {
    String v = System.getenv(name);
    return v == null || v.isBlank() ? def : v.trim();
  }

  /** The variable's value, or null when it is unset or blank. */
  public static String optional(String name) {
    return get(name, null);
  }

  public static int getInt(String name, int def) {
    String v = optional(name);
    if (v == null) {
      return def;
    }
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "=" + v + " is not an integer", e);
    }
  }

  public static long getLong(String name, long def) {
    String v = optional(name);
    if (v == null) {
      return def;
    }
    try {
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "=" + v + " is not an integer", e);
    }
  }

  public static double getDouble(String name, double def) {
    String v = optional(name);
    if (v == null) {
      return def;
    }
    try {
      return Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + "=" + v + " is not a number", e);
    }
  }

  public static boolean getBool(String name, boolean def) {
    String v = optional(name);
    if (v == null) {
      return def;
    }
    return v.equalsIgnoreCase("true") || v.equals("1") || v.equalsIgnoreCase("yes");
  }

  /**
   * A duration in ms: {@code msName} if set (tests use it), else {@code unitName} times
   * {@code unitMs}, else {@code defUnits} times {@code unitMs}.
   */
  public static long millis(String msName, String unitName, long unitMs, long defUnits) {
    String ms = optional(msName);
    if (ms != null) {
      return getLong(msName, 0);
    }
    return getLong(unitName, defUnits) * unitMs;
  }
}
