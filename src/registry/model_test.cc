// Request decoding: valid bodies decode, every bad field is a 400 that names it.
#include "registry/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zumik::registry {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kValid = R"({
  "name": "gpu-east", "profile": "byoc_epp",
  "stack": {"router": "epp", "runtime": "vllm", "serving": "kserve", "autoscaler": "aibrix",
            "kv_layer": "lmcache"},
  "fingerprint": "4b1c2a9e-0d7f-4a51-9a3f-1f2e3d4c5b6a",
  "kubernetes_version": "v1.30.2", "chart_version": "0.3.0", "future_field": 1})";

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(DecodeRegisterRequest, DecodesEveryFieldAndIgnoresUnknownOnes) {
  auto request = DecodeRegisterRequest(kValid);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->name, "gpu-east");
  EXPECT_EQ(request->profile, Profile::kByocEpp);
  EXPECT_EQ(request->stack, (Stack{"epp", "vllm", "kserve", "aibrix", "lmcache"}));
  EXPECT_EQ(request->fingerprint, "4b1c2a9e-0d7f-4a51-9a3f-1f2e3d4c5b6a");
  EXPECT_EQ(request->kubernetes_version, "v1.30.2");
  EXPECT_EQ(request->chart_version, "0.3.0");
}

struct BadCase {
  std::string body;
  std::string field;
};

class DecodeRegisterRequestRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(DecodeRegisterRequestRejects, WithAMessageNamingTheField) {
  auto request = DecodeRegisterRequest(GetParam().body);
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(request.status()), HasSubstr(GetParam().field));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, DecodeRegisterRequestRejects,
    ::testing::Values(
        BadCase{R"({"profile":"byoc_epp","stack":{},"fingerprint":"u"})", "'name'"},
        BadCase{R"({"name":"Bad_Name","profile":"byoc_epp","stack":{},"fingerprint":"u"})",
                "'name'"},
        BadCase{R"({"name":"a","profile":"byoc_x","stack":{},"fingerprint":"u"})", "'profile'"},
        BadCase{R"({"name":"a","profile":"byoc_epp","fingerprint":"u"})", "'stack'"},
        BadCase{R"({"name":"a","profile":"byoc_epp","stack":{"runtime":7},"fingerprint":"u"})",
                "'stack.runtime'"},
        BadCase{R"({"name":"a","profile":"byoc_epp","stack":{"router":"a b"},"fingerprint":"u"})",
                "'stack.router'"},
        BadCase{R"({"name":"a","profile":"byoc_epp","stack":{}})", "'fingerprint'"},
        BadCase{R"({"name":"a","profile":"byoc_epp","stack":{},"fingerprint":"u;drop"})",
                "'fingerprint'"},
        BadCase{R"({"name":"a","profile":"byoc_epp","stack":{},"fingerprint":"u",
                    "chart_version":"<script>"})",
                "'chart_version'"},
        BadCase{R"([1,2])", "JSON object"}, BadCase{"{not json", "not valid JSON"}));

TEST(DecodeRegisterRequest, RejectsANameLongerThanADnsLabel) {
  const std::string body = R"({"name":")" + std::string(64, 'a') +
                           R"(","profile":"byoc_epp","stack":{},"fingerprint":"u"})";
  auto request = DecodeRegisterRequest(body);
  EXPECT_THAT(Message(request.status()), HasSubstr("'name'"));
}

TEST(DecodeHeartbeatRequest, TreatsEmptyBodyAndEmptyObjectAsAPlainBeat) {
  for (std::string_view body : {"", "  ", "{}"}) {
    auto request = DecodeHeartbeatRequest(body);
    ASSERT_TRUE(request.ok()) << body;
    EXPECT_FALSE(request->status.has_value());
  }
}

TEST(DecodeHeartbeatRequest, DecodesAStatusSnapshot) {
  auto request = DecodeHeartbeatRequest(R"({"status":{
      "gpus":[{"product":"NVIDIA-H100-80GB-HBM3","count":8}], "nodes":2,
      "replicas":{"ready":3,"desired":4}, "model":"meta-llama/Llama-3.1-8B-Instruct",
      "tensor_parallel_size":2, "routes":[{"path":"/v1/completions","owner":"epp"}]}})");
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_TRUE(request->status.has_value());
  const StatusSnapshot& s = *request->status;
  ASSERT_EQ(s.gpus.size(), 1u);
  EXPECT_EQ(s.gpus[0], (GpuCount{"NVIDIA-H100-80GB-HBM3", 8}));
  EXPECT_EQ(s.nodes, 2);
  EXPECT_EQ(s.replicas_ready, 3);
  EXPECT_EQ(s.replicas_desired, 4);
  EXPECT_EQ(s.model, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(s.tensor_parallel_size, 2);
  EXPECT_EQ(s.routes, (std::vector<RouteClaim>{{"/v1/completions", "epp"}}));
}

TEST(DecodeHeartbeatRequest, NamesTheBadNestedField) {
  EXPECT_THAT(
      Message(
          DecodeHeartbeatRequest(R"({"status":{"gpus":[{"product":"x","count":-1}]}})").status()),
      HasSubstr("status.gpus[0].count"));
  EXPECT_THAT(
      Message(DecodeHeartbeatRequest(R"({"status":{"routes":[{"path":"v1","owner":"epp"}]}})")
                  .status()),
      HasSubstr("status.routes[0].path"));
  EXPECT_THAT(Message(DecodeHeartbeatRequest(R"({"status":{"nodes":1.5}})").status()),
              HasSubstr("status.nodes"));
  EXPECT_THAT(
      Message(DecodeHeartbeatRequest(R"({"status":{"nodes":99999999999999999999}})").status()),
      HasSubstr("status.nodes"));
  EXPECT_THAT(Message(DecodeHeartbeatRequest(R"({"status":[]})").status()), HasSubstr("'status'"));
}

TEST(DecodeHeartbeatRequest, CapsTheNumberOfRoutes) {
  std::string routes;
  for (size_t i = 0; i <= kMaxRoutes; ++i) {
    routes += (i ? "," : "") + std::string(R"({"path":"/a","owner":"epp"})");
  }
  auto request = DecodeHeartbeatRequest(R"({"status":{"routes":[)" + routes + "]}}");
  EXPECT_THAT(Message(request.status()), HasSubstr("at most 256"));
}

TEST(StatusJson, RoundTrips) {
  StatusSnapshot status;
  status.gpus = {{"NVIDIA-A100-SXM4-80GB", 4}, {"NVIDIA-L4", 1}};
  status.nodes = 3;
  status.replicas_ready = 1;
  status.replicas_desired = 2;
  status.model = "m";
  status.tensor_parallel_size = 4;
  status.routes = {{"/v1/chat/completions", "dynamo-router"}};
  auto decoded = StatusFromJson(StatusToJson(status));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, status);
}

TEST(Names, ValidateClusterIdsAndOrgs) {
  EXPECT_TRUE(IsValidClusterId("byc_0123abcd"));
  EXPECT_FALSE(IsValidClusterId("byc_"));
  EXPECT_FALSE(IsValidClusterId("byc_XYZ"));
  EXPECT_FALSE(IsValidClusterId("abc_0123"));
  EXPECT_TRUE(IsValidOrgName("acme-corp"));
  EXPECT_FALSE(IsValidOrgName("Acme Corp"));
  EXPECT_FALSE(IsValidOrgName(""));
}

}  // namespace
}  // namespace zumik::registry
