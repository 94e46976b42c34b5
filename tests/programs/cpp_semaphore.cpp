// Four threads start together on a std::latch, then take turns through a
// std::counting_semaphore of two slots, logging with std::cout under a
// std::mutex. The C++20 primitives wait on atomics (futex calls through
// syscall() when contended): which thread gets a slot is a race rrc does
// not record, and replay must never stall on it.
#include <chrono>
#include <iostream>
#include <latch>
#include <mutex>
#include <semaphore>
#include <thread>
#include <vector>

static std::counting_semaphore<2> slots(2);
static std::mutex out;

int main()
{
    std::latch start(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; i++)
        threads.emplace_back([i, &start] {
            start.arrive_and_wait();
            for (int k = 0; k < 20; k++) {
                slots.acquire();
                auto t = std::chrono::steady_clock::now().time_since_epoch().count();
                {
                    std::lock_guard<std::mutex> g(out);
                    std::cout << "thread " << i << " step " << k << " t " << (t / 1000) % 1000
                              << std::endl;
                }
                std::this_thread::sleep_for(std::chrono::microseconds(50));
                slots.release();
            }
        });
    for (auto &t : threads)
        t.join();
    std::cout << "done" << std::endl;
}
