// `zumik registry` as users run it: admin key commands, the API and the signed-in page over
// HTTP on SQLite and on PostgreSQL, the web page through headless Chromium (signed in), and
// SIGKILL during heartbeat load followed by a restart (no acknowledged registration may be lost).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "core/base64.h"
#include "core/http/client.h"
#include "postgres_instance.h"
#include "support/process.h"

namespace zumik::testing {
namespace {

using ::testing::HasSubstr;

// Runs a command and returns its stdout (stderr to the test log); `rc` gets the exit code.
std::string RunCommand(const std::string& command, int* rc = nullptr) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (rc != nullptr) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string CreateKey(const std::string& db, const std::string& org) {
  int rc = 0;
  std::string key = RunCommand(
      ZumikBinary() + " registry keys create --org " + org + " --db '" + db + "' 2>/dev/null", &rc);
  EXPECT_EQ(rc, 0);
  while (!key.empty() && key.back() == '\n') key.pop_back();
  return key;
}

class Registry {
 public:
  Registry(const std::string& db, const std::string& log, std::vector<std::string> extra = {}) {
    port_ = PickFreePort();
    std::vector<std::string> argv = {ZumikBinary(),         "registry", "--listen",
                                     std::to_string(port_), "--db",     db,
                                     "--flush-interval",    "100ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<ChildProcess>(argv, log);
    ready_ = WaitForPort(port_, std::chrono::seconds(10));
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  ChildProcess& process() { return *process_; }

  http::ClientResponse Call(http::Method method, const std::string& path, const std::string& body,
                            const std::string& credential) const {
    http::Headers headers;
    if (!credential.empty()) headers.emplace_back("Authorization", "Bearer " + credential);
    headers.emplace_back("Content-Type", "application/json");
    auto response = http::FetchBlocking(method, fmt::format("http://127.0.0.1:{}{}", port_, path),
                                        body, headers, std::chrono::seconds(5));
    if (!response.ok()) return http::ClientResponse{};
    return *response;
  }
  // GET / with this Authorization header (none when empty).
  http::ClientResponse GetPage(const std::string& authorization) const {
    http::Headers headers;
    if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
    auto response =
        http::FetchBlocking(http::Method::get, fmt::format("http://127.0.0.1:{}/", port_), "",
                            headers, std::chrono::seconds(5));
    if (!response.ok()) return http::ClientResponse{};
    return *response;
  }

 private:
  int port_ = 0;
  bool ready_ = false;
  std::unique_ptr<ChildProcess> process_;
};

std::string RegisterBody(const std::string& name, const std::string& fingerprint,
                         const std::string& profile = "byoc_epp") {
  return fmt::format(
      R"({{"name":"{}","profile":"{}","stack":{{"router":"epp","runtime":"vllm","serving":"kserve",)"
      R"("autoscaler":"aibrix","kv_layer":"lmcache"}},"fingerprint":"{}",)"
      R"("kubernetes_version":"v1.30.2","chart_version":"0.3.0"}})",
      name, profile, fingerprint);
}

struct Registered {
  std::string id;
  std::string token;
};

Registered Parse(const http::ClientResponse& response) {
  boost::system::error_code ec;
  auto value = boost::json::parse(response.body, ec);
  if (ec || !value.is_object()) return {};
  auto& object = value.as_object();
  if (!object.contains("id")) return {};
  return {std::string(object["id"].as_string()), std::string(object["cluster_token"].as_string())};
}

// The scenario every backend must pass: keys, register, re-register, heartbeat with a
// snapshot, list/get with filters, tenant isolation, revoked key.
void ExerciseApi(const std::string& db, const std::string& dir) {
  const std::string acme = CreateKey(db, "acme");
  const std::string globex = CreateKey(db, "globex");
  ASSERT_TRUE(acme.starts_with("zk_live_")) << acme;
  Registry registry(db, dir + "/registry.log");
  ASSERT_TRUE(registry.ready()) << registry.process().ReadLog();

  auto created =
      registry.Call(http::Method::post, "/v1/clusters", RegisterBody("east", "uid-1"), acme);
  ASSERT_EQ(created.status, 201) << created.body;
  const Registered east = Parse(created);
  auto again =
      registry.Call(http::Method::post, "/v1/clusters", RegisterBody("east", "uid-1"), acme);
  EXPECT_EQ(again.status, 200);
  const Registered east2 = Parse(again);
  EXPECT_EQ(east2.id, east.id);
  EXPECT_EQ(
      registry.Call(http::Method::post, "/v1/clusters", RegisterBody("east", "uid-2"), acme).status,
      409);

  const std::string snapshot =
      R"({"status":{"gpus":[{"product":"NVIDIA-H100-80GB-HBM3","count":8}],"nodes":2,)"
      R"("replicas":{"ready":2,"desired":2},"model":"llama","tensor_parallel_size":4,)"
      R"("routes":[{"path":"/v1/completions","owner":"epp"}]}})";
  auto beat = registry.Call(http::Method::post, "/v1/clusters/" + east.id + "/heartbeat", snapshot,
                            east2.token);
  EXPECT_EQ(beat.status, 200) << beat.body;
  EXPECT_EQ(
      registry.Call(http::Method::post, "/v1/clusters/" + east.id + "/heartbeat", "{}", east.token)
          .status,
      401);

  auto listed =
      registry.Call(http::Method::get, "/v1/clusters?status=healthy&stack=lmcache", "", acme);
  ASSERT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr(east.id));
  EXPECT_THAT(listed.body, HasSubstr("NVIDIA-H100-80GB-HBM3"));
  EXPECT_THAT(registry.Call(http::Method::get, "/v1/clusters", "", globex).body,
              ::testing::Not(HasSubstr(east.id)));
  EXPECT_EQ(registry.Call(http::Method::get, "/v1/clusters/" + east.id, "", globex).status, 404);
  // The web page: signed in with a key, that org's clusters only; without one, a challenge.
  auto page = registry.GetPage("Basic " + Base64Encode("admin:" + acme));
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, HasSubstr(east.id));
  EXPECT_THAT(page.body, HasSubstr("8× NVIDIA-H100-80GB-HBM3"));
  auto other_page = registry.GetPage("Bearer " + globex);
  EXPECT_EQ(other_page.status, 200);
  EXPECT_THAT(other_page.body, ::testing::Not(HasSubstr(east.id)));
  auto anonymous = registry.GetPage("");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_THAT(std::string(anonymous.Header("WWW-Authenticate")), HasSubstr("Basic realm="));
  EXPECT_THAT(anonymous.body, ::testing::Not(HasSubstr(east.id)));

  // A revoked key stops working at once, even with the server running.
  int rc = 0;
  RunCommand(ZumikBinary() + " registry keys revoke --org globex " + globex.substr(0, 16) +
                 " --db '" + db + "'",
             &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(registry.Call(http::Method::get, "/v1/clusters", "", globex).status, 401);
  EXPECT_EQ(registry.GetPage("Basic " + Base64Encode("admin:" + globex)).status, 401);
  const std::string keys =
      RunCommand(ZumikBinary() + " registry keys list --org globex --db '" + db + "'");
  EXPECT_THAT(keys, HasSubstr(globex.substr(0, 16)));
  EXPECT_THAT(keys, ::testing::Not(HasSubstr(globex)));  // never the whole key
  // The key never reaches the server's log.
  EXPECT_THAT(registry.process().ReadLog(), ::testing::Not(HasSubstr(acme)));
  EXPECT_THAT(registry.process().ReadLog(), ::testing::Not(HasSubstr(globex)));
  EXPECT_THAT(registry.process().ReadLog(), ::testing::Not(HasSubstr(east2.token)));
}

TEST(RegistryBinary, ServesTheApiOnSqlite) {
  const std::string dir = MakeTempDir("registry-bin");
  ExerciseApi("sqlite:" + dir + "/registry.db", dir);
}

TEST(RegistryBinary, ServesTheApiOnPostgres) {
  PostgresInstance postgres;
  const std::string error = postgres.Start();
  ASSERT_EQ(error, "");
  const std::string url = postgres.FreshSchemaUrl("registry");
  ASSERT_NE(url, "");
  ExerciseApi(url, MakeTempDir("registry-bin-pg"));
}

// While its database is down the registry says so on /healthz (503, for a probe), answers the
// API 503 without the driver's words (they name the database's host), and logs why.
TEST(RegistryBinary, ADatabaseOutageIsA503OnHealthAndApiAndIsLogged) {
  PostgresInstance postgres;
  ASSERT_EQ(postgres.Start(), "");
  const std::string url = postgres.FreshSchemaUrl("outage");
  ASSERT_NE(url, "");
  const std::string key = CreateKey(url, "acme");
  const std::string dir = MakeTempDir("registry-outage");
  Registry registry(url, dir + "/registry.log");
  ASSERT_TRUE(registry.ready()) << registry.process().ReadLog();
  EXPECT_EQ(registry.Call(http::Method::get, "/healthz", "", "").status, 200);
  auto created =
      registry.Call(http::Method::post, "/v1/clusters", RegisterBody("east", "uid-1"), key);
  ASSERT_EQ(created.status, 201) << created.body;
  const Registered east = Parse(created);

  postgres.Stop("fast");  // an outage, not a crash that loses commits (see Stop)
  auto health = registry.Call(http::Method::get, "/healthz", "", "");
  EXPECT_EQ(health.status, 503);
  EXPECT_THAT(health.body, HasSubstr("\"database\":\"unavailable\""));
  auto api = registry.Call(http::Method::get, "/v1/clusters", "", key);
  EXPECT_EQ(api.status, 503);
  EXPECT_THAT(api.body, HasSubstr("\"code\":\"unavailable\""));
  EXPECT_THAT(api.body, HasSubstr("database is unavailable"));
  EXPECT_THAT(api.body, ::testing::Not(HasSubstr(std::to_string(postgres.port()))));
  EXPECT_THAT(registry.process().ReadLog(), HasSubstr("database unavailable"));

  // The database comes back: the same process serves again (it reconnects), nothing lost.
  ASSERT_EQ(postgres.Restart(), "");
  int healthy = 0;
  for (int i = 0; i < 100 && healthy != 200; ++i) {
    healthy = registry.Call(http::Method::get, "/healthz", "", "").status;
    if (healthy != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(healthy, 200) << registry.process().ReadLog();
  auto after = registry.Call(http::Method::get, "/v1/clusters/" + east.id, "", key);
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_THAT(after.body, HasSubstr(east.id));
  auto beat =
      registry.Call(http::Method::post, "/v1/clusters/" + east.id + "/heartbeat", "{}", east.token);
  EXPECT_EQ(beat.status, 200) << beat.body;
}

// A database host that accepts connections and then says nothing: the registry gives up after
// its default connect_timeout (10 s) and says so, instead of waiting for ever.
TEST(RegistryBinary, ADatabaseThatNeverAnswersFailsTheStartInBoundedTime) {
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(silent, 8), 0);  // the kernel completes the handshake; nobody ever reads
  socklen_t length = sizeof address;
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string dir = MakeTempDir("registry-silent-db");
  const auto start = std::chrono::steady_clock::now();
  ChildProcess registry(
      {ZumikBinary(), "registry", "--listen", "0", "--db",
       fmt::format("postgres://zumik@127.0.0.1:{}/registry", ntohs(address.sin_port))},
      dir + "/registry.log");
  const int rc = registry.Wait(std::chrono::seconds(40));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(silent);
  EXPECT_EQ(rc, 1) << registry.ReadLog();
  EXPECT_LT(seconds, 30);
  EXPECT_THAT(registry.ReadLog(), HasSubstr("cannot connect to postgres"));
}

TEST(RegistryBinary, RefusesToStartWithoutAPortOrWithABadDatabase) {
  int rc = 0;
  RunCommand(ZumikBinary() + " registry 2>/dev/null", &rc);
  EXPECT_EQ(rc, 2);
  RunCommand(ZumikBinary() + " registry --listen 0 --db mysql://x 2>/dev/null", &rc);
  EXPECT_EQ(rc, 1);
}

TEST(RegistryBinary, ShowsClustersOnTheWebPageInHeadlessChromium) {
  const std::string dir = MakeTempDir("registry-web");
  const std::string db = "sqlite:" + dir + "/registry.db";
  const std::string key = CreateKey(db, "acme");
  const std::string other_key = CreateKey(db, "globex");
  Registry registry(db, dir + "/registry.log");
  ASSERT_TRUE(registry.ready()) << registry.process().ReadLog();
  const Registered east = Parse(
      registry.Call(http::Method::post, "/v1/clusters", RegisterBody("gpu-east", "uid-1"), key));
  const Registered dyn =
      Parse(registry.Call(http::Method::post, "/v1/clusters",
                          RegisterBody("dynamo-west", "uid-2", "byoc_dynamo"), key));
  const Registered theirs = Parse(registry.Call(http::Method::post, "/v1/clusters",
                                                RegisterBody("globex-north", "uid-3"), other_key));
  ASSERT_FALSE(east.id.empty());
  ASSERT_FALSE(theirs.id.empty());
  ASSERT_EQ(registry
                .Call(http::Method::post, "/v1/clusters/" + east.id + "/heartbeat",
                      R"({"status":{"gpus":[{"product":"NVIDIA-H100-80GB-HBM3","count":8}],)"
                      R"("routes":[{"path":"/v1/completions","owner":"epp"}]}})",
                      east.token)
                .status,
            200);
  ASSERT_EQ(
      registry
          .Call(http::Method::post, "/v1/clusters/" + dyn.id + "/heartbeat",
                R"({"status":{"routes":[{"path":"/v1/completions","owner":"dynamo-router"}]}})",
                dyn.token)
          .status,
      200);
  // The page needs the org's key. Chromium signs in with the credentials in the URL's
  // user-info (any user, the key as password), answering the page's Basic challenge with them.
  // (Headless Chromium dumps nothing for a 401, so the sign-in page is checked over HTTP in
  // ExerciseApi.)
  const std::string dom = RunCommand(fmt::format(
      "timeout 15 /usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--user-data-dir={}/chromium --dump-dom 'http://admin:{}@127.0.0.1:{}/' 2>/dev/null",
      dir, key, registry.port()));
  EXPECT_THAT(dom, HasSubstr("<title>Zumik registry</title>"));
  EXPECT_THAT(dom, HasSubstr("<b id=\"org\">acme</b>: 2 cluster(s)"));
  EXPECT_THAT(dom, ::testing::Not(HasSubstr("globex-north")));
  EXPECT_THAT(dom, ::testing::Not(HasSubstr(theirs.id)));
  EXPECT_THAT(dom, HasSubstr(">gpu-east<"));
  EXPECT_THAT(dom, HasSubstr(east.id));
  EXPECT_THAT(dom, HasSubstr(">byoc_epp<"));
  EXPECT_THAT(dom, HasSubstr(">byoc_dynamo<"));
  EXPECT_THAT(dom, HasSubstr("epp · vllm · kserve · aibrix · lmcache"));
  EXPECT_THAT(dom, HasSubstr("class=\"healthy\">healthy<"));
  EXPECT_THAT(dom, HasSubstr("8× NVIDIA-H100-80GB-HBM3"));
  EXPECT_THAT(dom, HasSubstr("conflict: /v1/completions also claimed by dynamo-west"));
  EXPECT_THAT(dom, HasSubstr("http-equiv=\"refresh\""));
}

TEST(RegistryBinary, LosesNoClusterWhenKilledDuringHeartbeatLoad) {
  const std::string dir = MakeTempDir("registry-kill");
  const std::string db = "sqlite:" + dir + "/registry.db";
  const std::string key = CreateKey(db, "acme");
  const std::vector<std::string> flags = {"--rate-limit", "100000",           "--rate-burst",
                                          "100000",       "--heartbeat-rate", "1000"};
  auto registry = std::make_unique<Registry>(db, dir + "/registry-1.log", flags);
  ASSERT_TRUE(registry->ready()) << registry->process().ReadLog();

  std::mutex mu;
  std::vector<Registered> acknowledged;
  for (int i = 0; i < 50; ++i) {
    auto response =
        registry->Call(http::Method::post, "/v1/clusters",
                       RegisterBody(fmt::format("c{}", i), fmt::format("uid-{}", i)), key);
    ASSERT_EQ(response.status, 201);
    acknowledged.push_back(Parse(response));
  }
  // Heartbeat load on the first 50 while registrations keep arriving; then SIGKILL.
  std::atomic<bool> stop{false};
  std::atomic<int> beats{0};
  const std::vector<Registered> first = acknowledged;
  std::vector<std::thread> threads;
  threads.reserve(3);
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); !stop; i += 3) {
        const Registered& c = first[i % first.size()];
        if (registry->Call(http::Method::post, "/v1/clusters/" + c.id + "/heartbeat", "{}", c.token)
                .status == 200) {
          ++beats;
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 50; !stop; ++i) {
      auto response =
          registry->Call(http::Method::post, "/v1/clusters",
                         RegisterBody(fmt::format("c{}", i), fmt::format("uid-{}", i)), key);
      if (response.status == 201) {
        std::lock_guard lock(mu);
        acknowledged.push_back(Parse(response));
      }
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (beats < 500 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(beats.load(), 500);
  kill(registry->process().pid(), SIGKILL);
  stop = true;
  for (auto& thread : threads) thread.join();
  registry->process().Wait(std::chrono::seconds(5));
  registry.reset();

  Registry restarted(db, dir + "/registry-2.log");
  ASSERT_TRUE(restarted.ready()) << restarted.process().ReadLog();
  auto listed = restarted.Call(http::Method::get, "/v1/clusters", "", key);
  ASSERT_EQ(listed.status, 200);
  for (const Registered& c : acknowledged) {
    EXPECT_THAT(listed.body, HasSubstr(c.id));
    // Operators recover: their tokens still work after the restart.
    EXPECT_EQ(
        restarted.Call(http::Method::post, "/v1/clusters/" + c.id + "/heartbeat", "{}", c.token)
            .status,
        200)
        << c.id;
  }
  EXPECT_GT(acknowledged.size(), 50u);
  // Start-up grace: nobody is unknown right after the restart.
  EXPECT_THAT(listed.body, ::testing::Not(HasSubstr("\"status\":\"unknown\"")));
}

}  // namespace
}  // namespace zumik::testing
