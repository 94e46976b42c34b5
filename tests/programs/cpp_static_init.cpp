// Workers reach function-local statics together: which one constructs
// each is decided by libstdc++'s guard (an inline check of the guard's
// first byte, then __cxa_guard_acquire), and the constructor reads the
// clock and prints who built it.
#include <atomic>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

struct Registry {
  int builder;
  long stamp;
  Registry(const char *name, int who) : builder(who) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    stamp = ts.tv_nsec;
    std::printf("%s built by worker %d\n", name, who);
  }
};

static Registry &first(int who) {
  static Registry r("first", who);
  return r;
}
static Registry &second(int who) {
  static Registry r("second", who);
  return r;
}
static Registry &third(int who) {
  static Registry r("third", who);
  return r;
}

static std::atomic<int> ready{0};

static void spin_a_while() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  volatile long x = 0;
  for (long i = 0; i < ts.tv_nsec % 300000; i++) x = x + i;
}

static void work(int id) {
  ready.fetch_add(1);
  while (ready.load() < 4) {
  }
  spin_a_while();
  int a = first(id).builder;
  spin_a_while();
  int b = second(id).builder;
  spin_a_while();
  int c = third(id).builder;
  std::printf("worker %d saw builders %d %d %d\n", id, a, b, c);
}

int main() {
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; i++) ts.emplace_back(work, i);
  for (auto &t : ts) t.join();
  std::printf("done\n");
  return 0;
}
