// Workers take jobs from a queue under std::mutex/std::condition_variable
// and log with std::cout from every thread; the jobs come from
// std::random_device (RDRAND where the processor has it).
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <vector>

int main() {
    std::mutex m;
    std::condition_variable cv;
    std::queue<int> jobs;
    bool done = false;
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; w++) {
        workers.emplace_back([&, w] {
            long sum = 0;
            for (;;) {
                int job;
                {
                    std::unique_lock<std::mutex> lk(m);
                    cv.wait(lk, [&] { return done || !jobs.empty(); });
                    if (jobs.empty()) break;
                    job = jobs.front();
                    jobs.pop();
                }
                sum += job;
                auto t = std::chrono::steady_clock::now().time_since_epoch().count();
                std::cout << "worker " << w << " took job " << job << " at " << (t % 1000) << std::endl;
            }
            std::cout << "worker " << w << " sum " << sum << "\n";
        });
    }
    std::random_device rd;
    for (int i = 0; i < 300; i++) {
        {
            std::lock_guard<std::mutex> lk(m);
            jobs.push(i + (rd() % 3));
        }
        cv.notify_one();
        if (i % 37 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    {
        std::lock_guard<std::mutex> lk(m);
        done = true;
    }
    cv.notify_all();
    for (auto &t : workers) t.join();
    std::cout << "all done" << std::endl;
}
