#!/bin/bash
# Stand-in for kafka-run-class.sh: java -cp "$CLASSPATH:/opt/kafka/libs/*" with KAFKA_HEAP_OPTS /
# KAFKA_JVM_PERFORMANCE_OPTS / KAFKA_LOG4J_OPTS / KAFKA_OPTS, as the real script does (it appends
# the libs to an inherited CLASSPATH, which is how the load generator's jar joins them; no GC
# log, no JMX options).
[ $# -lt 1 ] && { echo "USAGE: $0 classname [opts]"; exit 1; }
: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties}"
exec java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_LOG4J_OPTS $KAFKA_OPTS -cp "${CLASSPATH:+$CLASSPATH:}/opt/kafka/libs/*" "$@"
