// Test fixture shared by the operator's unit tests: a Kubernetes API double (documented in
// kube/testing/fake_api_server.h) started on loopback, and a KubeSession against it.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "kube/testing/fake_api_server.h"
#include "operator/kube_session.h"

namespace zumik::op::testing {

class KubeSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    session_ = std::make_unique<KubeSession>(api_.ClientConfig());
  }
  void TearDown() override {
    session_.reset();
    api_.Stop();
  }
  kube::testing::FakeApiServer api_;
  std::unique_ptr<KubeSession> session_;
};

}  // namespace zumik::op::testing
