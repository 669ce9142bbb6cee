# pg_tests.cmake: the ctest fixture "pg", a throwaway PostgreSQL cluster run by
# scripts/pg-service in ${CMAKE_BINARY_DIR}/pg-fixture/cluster, and the tests that use it.
# Included from CMakeLists.txt after the unit and integration tests are registered:
#
#   include(cmake/pg_tests.cmake)
#
# pg/start (FIXTURES_SETUP pg) stops and removes any cluster an earlier run left behind,
# starts a fresh one and writes its URL, postgres://volli:PASSWORD@127.0.0.1:PORT/volli, as the
# one line of ${CMAKE_BINARY_DIR}/pg-fixture/url; pg/stop (FIXTURES_CLEANUP pg) stops it and
# keeps the directory (data, postgres.log) for a post-mortem until the next run.
#
# Another test uses the cluster with
#
#   vs_use_pg_fixture(integration/60-cluster ...)
#
# which adds FIXTURES_REQUIRED pg, RESOURCE_LOCK volli_pg (unit/test_store_pg kills and
# restarts the server, so tests on the cluster never overlap) and the environment:
#   VOLLI_TEST_PG_URL_FILE  the file holding the URL (read it at test time: the port and the
#                           password are chosen when the fixture starts)
#   VOLLI_TEST_PG_DIR       the service directory, for scripts/pg-service kill|restart|url DIR
#   VOLLI_TEST_PG_SERVICE   the absolute path of scripts/pg-service
# Tests should work in a schema or tables of their own (e.g. options=-csearch_path=NAME in the
# URL, as test_store_pg does): the database is shared by every test of a run.

set(VS_PG_FIXTURE_DIR ${CMAKE_BINARY_DIR}/pg-fixture)
set(VS_PG_CLUSTER_DIR ${VS_PG_FIXTURE_DIR}/cluster)
set(VS_PG_URL_FILE ${VS_PG_FIXTURE_DIR}/url)
set(VS_PG_SERVICE ${PROJECT_SOURCE_DIR}/scripts/pg-service)

add_test(NAME pg/start
  COMMAND bash -c [=[
set -eu
svc=$1 dir=$2 url=$3
if [ -d "$dir" ]; then "$svc" stop "$dir" >/dev/null 2>&1 || true; fi
rm -rf "$dir" "$url" "$url.tmp"
mkdir -p "$(dirname "$url")"
"$svc" start "$dir" >"$url.tmp"
test "$(wc -l <"$url.tmp")" -eq 1
mv "$url.tmp" "$url"
echo "PostgreSQL fixture running in $dir"
]=] pg-start ${VS_PG_SERVICE} ${VS_PG_CLUSTER_DIR} ${VS_PG_URL_FILE})
set_tests_properties(pg/start PROPERTIES FIXTURES_SETUP pg RESOURCE_LOCK volli_pg TIMEOUT 120
  LABELS pg)

add_test(NAME pg/stop COMMAND ${VS_PG_SERVICE} stop ${VS_PG_CLUSTER_DIR})
set_tests_properties(pg/stop PROPERTIES FIXTURES_CLEANUP pg RESOURCE_LOCK volli_pg TIMEOUT 120
  LABELS pg)

function(vs_use_pg_fixture)
  foreach(t ${ARGN})
    set_property(TEST ${t} APPEND PROPERTY FIXTURES_REQUIRED pg)
    set_property(TEST ${t} APPEND PROPERTY RESOURCE_LOCK volli_pg)
    set_property(TEST ${t} APPEND PROPERTY ENVIRONMENT
      "VOLLI_TEST_PG_URL_FILE=${VS_PG_URL_FILE}"
      "VOLLI_TEST_PG_DIR=${VS_PG_CLUSTER_DIR}"
      "VOLLI_TEST_PG_SERVICE=${VS_PG_SERVICE}")
  endforeach()
endfunction()

# The store's own tests (tests/unit/test_store_pg.c, registered by the unit-test glob).
if(TEST unit/test_store_pg)
  vs_use_pg_fixture(unit/test_store_pg)
endif()
