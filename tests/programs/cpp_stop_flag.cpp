// The same stop flag in C++: std::thread workers log through std::cout
// under a std::mutex and sleep until a std::atomic<bool> is cleared; main
// clears it and joins them (std::thread::join, pthread_join underneath).
// A second group stops through std::jthread's stop_token.
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

static std::atomic<bool> running{true};
static std::mutex out;

static void say(const char *what, int id, int n)
{
    std::lock_guard<std::mutex> g(out);
    std::cout << what << ' ' << id << ' ' << n << '\n';
}

int main()
{
    std::vector<std::thread> plain;
    for (int i = 0; i < 3; i++)
        plain.emplace_back([i] {
            int n = 0;
            while (running.load()) {
                say("tick", i, n++);
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            say("stopped", i, n);
        });
    std::this_thread::sleep_for(std::chrono::milliseconds(12));
    running = false;
    for (auto &t : plain)
        t.join();

    std::vector<std::jthread> stoppable;
    for (int i = 0; i < 2; i++)
        stoppable.emplace_back([i](std::stop_token st) {
            int n = 0;
            while (!st.stop_requested()) {
                say("jtick", i, n++);
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            say("jstopped", i, n);
        });
    std::this_thread::sleep_for(std::chrono::milliseconds(12));
    for (auto &t : stoppable)
        t.request_stop();
    stoppable.clear();
    std::cout << "all stopped" << std::endl;
    return 0;
}
