#!/usr/bin/env bash
# Prepares (once) and prints the directory of the Spark client used by the tests: a venv with
# pyspark 3.5.9 and Iceberg's Spark runtime jar (PyPI), and `jars/iceberg-shaded-deps.jar` —
# the Jackson and HttpClient5 classes that PyPI's runtime jar lacks, relocated the way Iceberg
# relocates them, built with jarjar from Debian's jars (PyPI has no Iceberg runtime with them for Spark 3.5).
# Needs Java 17 and apt-get (for the Debian jars) on a fresh machine; later runs reuse the result.
set -euo pipefail
base=${SPARK_ENV_DIR:-$HOME/.cache/floe/spark}
ready=$base/.ready-v1
if [ -f "$ready" ]; then echo "$base"; exit 0; fi
{
  packages="libjackson2-annotations-java libjackson2-core-java libjackson2-databind-java libhttpclient5-java libhttpcore5-java libjarjar-java libasm-java"
  # shellcheck disable=SC2086
  dpkg -s $packages >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $packages >/dev/null; }
  rm -rf "$base" && mkdir -p "$base/jars" "$base/build/classes"
  python3 -m venv "$base/venv"
  "$base/venv/bin/pip" install -q --disable-pip-version-check pyspark==3.5.9 snowpark-connect-deps-iceberg==1.0.3
  site=$("$base/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cp "$site/snowpark_connect_deps_iceberg/jars/iceberg-spark-runtime-3.5_2.12-1.10.2.jar" "$base/jars/"
  cd "$base/build"
  for jar in jackson-annotations jackson-core jackson-databind httpclient5 httpcore5 httpcore5-h2; do
    (cd classes && jar xf "/usr/share/java/$jar.jar")
  done
  rm -rf classes/META-INF
  # Iceberg's HTTPClient names this HttpClient 5.4 interface on a branch Floe's tests never take.
  mkdir -p src/org/apache/hc/client5/http/ssl
  echo 'package org.apache.hc.client5.http.ssl; public interface TlsSocketStrategy {}' \
    > src/org/apache/hc/client5/http/ssl/TlsSocketStrategy.java
  javac -d classes src/org/apache/hc/client5/http/ssl/TlsSocketStrategy.java
  (cd classes && jar cf ../deps.jar .)
  printf 'rule com.fasterxml.jackson.** org.apache.iceberg.shaded.com.fasterxml.jackson.@1\nrule org.apache.hc.** org.apache.iceberg.shaded.org.apache.hc.@1\n' > rules.txt
  java -cp /usr/share/java/jarjar.jar:/usr/share/java/asm.jar:/usr/share/java/asm-commons.jar:/usr/share/java/asm-tree.jar \
    com.tonicsystems.jarjar.Main process rules.txt deps.jar "$base/jars/iceberg-shaded-deps.jar"
  cd "$base" && rm -rf build
  touch "$ready"
} >&2
echo "$base"
