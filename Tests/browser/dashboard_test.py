"""The dashboard at /ui/ in a real headless Chromium, driven by Selenium (issue 17).

Usage (Tests/run.sh runs it inside `unshare --net` with only loopback up, because Chromium
reaches out on its own; Selenium is told SE_OFFLINE=true so it never downloads a driver):

    python3 dashboard_test.py PATH/TO/jobpool

Against a real `jobpool serve` on 127.0.0.1, port 0: the overview updates live; the submit
form makes a job whose page goes running then succeeded; Enter on the cancel button cancels;
a job's HTML-looking input is shown as text and runs nothing; a wrong API key is refused and a
tenant never sees another's jobs; axe-core finds no serious or critical violation on any
page; Tab reaches every control; at 390 px nothing scrolls sideways. Screenshots of every page
at 1280 and 390 px go to Tests/artifacts/. Every process started here is stopped by PID (the
browser with chromedriver's process group) on every path.
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from jobpool_harness import Server  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from selenium_axe_python import Axe  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACTS = os.path.join(HERE, "..", "artifacts")
QUICK = {"kind": "write_code", "input": {"name": "quick", "max_seconds": 0}}
failures = []


def check(condition, message):
    print(("ok    " if condition else "FAIL  ") + message, flush=True)
    if not condition:
        failures.append(message)


class Browser:
    """Headless Chromium through chromedriver, both in a process group of their own."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="jobpool-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--user-data-dir={self.profile}",
                         "--window-size=1280,900", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-default-apps"]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.service = Service("/usr/bin/chromedriver", popen_kw={"start_new_session": True})
        self.driver = webdriver.Chrome(service=self.service, options=options)
        self.driver.set_script_timeout(30)
        self.group = os.getpgid(self.service.process.pid)

    def quit(self):
        try:
            self.driver.quit()
        except Exception as error:  # the browser may be gone already
            print("quit:", error)
        # Chromium's helpers exit on their own shortly after; whatever is left then is killed.
        deadline = time.time() + 5
        try:
            while time.time() < deadline:
                os.killpg(self.group, 0)
                time.sleep(0.1)
            os.killpg(self.group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def width(self, pixels):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": pixels, "height": 900, "deviceScaleFactor": 1, "mobile": pixels < 600})

    def open(self, url):
        self.driver.get(url)

    def wait(self, condition, seconds=10, message=""):
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.05).until(lambda driver: condition(driver))
        except TimeoutException:
            return None

    def text(self, selector):
        # Read in one script call: the page re-renders live, so a found element can go stale.
        return self.driver.execute_script(
            "const element = document.querySelector(arguments[0]); return element ? element.textContent.trim() : null", selector)

    def console_errors(self):
        return [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


def submit(server, body, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, job, _ = server.request("POST", "/v1/jobs", body, headers)
    assert status == 202 or status == 201 or status == 200, (status, job)
    return job


def goto(browser, server, route, ready_selector):
    browser.open(f"{server.base}/ui/{route}")
    found = browser.wait(lambda driver: driver.find_elements(By.CSS_SELECTOR, ready_selector), 10)
    check(bool(found), f"{route or 'overview'}: {ready_selector} appears")


def tab_reaches_every_control(browser, name):
    driver = browser.driver
    controls = driver.execute_script("""
        const all = [...document.querySelectorAll('a[href], button, input, select, textarea')];
        return all.filter((element) => !element.disabled && element.offsetParent !== null && element.getAttribute('tabindex') !== '-1')
                  .map((element, index) => { element.dataset.tabProbe = String(index); return String(index); });
    """)
    driver.execute_script("document.activeElement && document.activeElement.blur(); window.focus();")
    body = driver.find_element(By.TAG_NAME, "body")
    reached = set()
    body.send_keys(Keys.TAB)
    for _ in range(len(controls) + 10):
        probe = driver.execute_script("return document.activeElement && document.activeElement.dataset.tabProbe || null")
        if probe is not None:
            reached.add(probe)
        driver.switch_to.active_element.send_keys(Keys.TAB)
    missing = [control for control in controls if control not in reached]
    check(not missing and len(controls) > 0, f"{name}: Tab reaches all {len(controls)} controls (missed {len(missing)})")


def axe_check(browser, name):
    axe = Axe(browser.driver)
    axe.inject()
    results = axe.run()
    bad = [violation for violation in results["violations"] if violation["impact"] in ("serious", "critical")]
    for violation in bad:
        print(f"      axe {violation['impact']}: {violation['id']}: {violation['help']} "
              f"({[node['target'] for node in violation['nodes']][:3]})")
    check(not bad, f"{name}: axe-core finds no serious or critical violation ({len(results['violations'])} minor)")


def screenshots_and_width(browser, name):
    browser.driver.execute_script("document.activeElement && document.activeElement.blur()")
    for width in (1280, 390):
        browser.width(width)
        time.sleep(0.2)  # let layout settle after the viewport change; nothing is waited on but paint
        browser.driver.save_screenshot(os.path.join(ARTIFACTS, f"{name}-{width}.png"))
        if width == 390:
            scroll = browser.driver.execute_script("return document.documentElement.scrollWidth")
            check(scroll <= 390, f"{name}: scrollWidth {scroll} <= 390 at 390 px")
    browser.width(1280)


def page_checks(browser, name):
    axe_check(browser, name)
    tab_reaches_every_control(browser, name)
    screenshots_and_width(browser, name)


def test_open_dashboard(browser, server):
    started = time.time()
    browser.open(f"{server.base}/ui/")
    load_ms = browser.driver.execute_script(
        "const [entry] = performance.getEntriesByType('navigation'); return entry ? entry.loadEventEnd - entry.startTime : null")
    print(f"info  first load of the overview: {load_ms:.1f} ms to the load event (wall {1000 * (time.time() - started):.0f} ms)")
    with open(os.path.join(ARTIFACTS, "first-load-ms.txt"), "w") as out:
        out.write(f"{load_ms:.1f}\n")
    found = browser.wait(lambda driver: driver.find_elements(By.ID, "count-succeeded"), 10)
    check(bool(found), "overview: counts appear")
    browser.wait(lambda driver: browser.text("#live") == "live", 5)
    check(browser.text("#live") == "live", "overview: the event stream is live")
    return load_ms


def test_live_counts(browser, server):
    browser.driver.execute_script("window.__noReload = 'still here'")
    before = int(browser.text("#count-succeeded"))
    for _ in range(20):
        submit(server, QUICK)
    started = time.time()
    changed = browser.wait(lambda driver: int(browser.text("#count-succeeded") or -1) >= before + 20, 2)
    check(bool(changed), f"overview: 20 API submissions show within 2 s without a reload "
                         f"({before} -> {browser.text('#count-succeeded')} in {time.time() - started:.2f} s)")
    check(browser.driver.execute_script("return window.__noReload") == "still here", "overview: the page was not reloaded")
    errors = browser.console_errors()
    check(not errors, f"overview: no console errors {errors}")
    # Still the same page, so the chart (redrawn every 5 s) shows the jobs it counted from the stream.
    plotted = browser.wait(lambda driver: driver.execute_script("""
        const line = document.querySelector('.chart .done');
        const baseline = Math.max(...line.getAttribute('points').split(' ').map((point) => Number(point.split(',')[1])));
        return line.getAttribute('points').split(' ').some((point) => Number(point.split(',')[1]) < baseline - 1);
    """), 7)
    check(bool(plotted), "overview: the chart plots the finished jobs")
    page_checks(browser, "overview")


def test_submit_form(browser, server):
    goto(browser, server, "#/submit", "#submit-input")
    Select(browser.driver.find_element(By.ID, "submit-kind")).select_by_value("write_code")
    area = browser.driver.find_element(By.ID, "submit-input")
    area.clear()
    area.send_keys('{"name": "from the form", "min_seconds": 1.5, "max_seconds": 1.5}')
    browser.driver.find_element(By.ID, "submit-button").click()
    running = browser.wait(lambda driver: browser.text("#job-status") == "running", 10)
    check(bool(running), "submit form: the new job's page shows running")
    done = browser.wait(lambda driver: browser.text("#job-status") == "succeeded", 10)
    check(bool(done), "submit form: then succeeded, live")
    check("from the form" in (browser.text("#job-input") or ""), "submit form: the input is shown")


def test_cancel(browser, server):
    job = submit(server, {"kind": "write_code", "input": {"name": "long", "min_seconds": 60, "max_seconds": 60}})
    goto(browser, server, f"#/jobs/{job['id']}", "#job-status")
    browser.wait(lambda driver: browser.text("#job-status") == "running", 10)
    page_checks(browser, "job-running")
    button = browser.driver.find_element(By.ID, "cancel-job")
    browser.driver.execute_script("arguments[0].focus()", button)
    browser.driver.switch_to.active_element.send_keys(Keys.ENTER)
    cancelled = browser.wait(lambda driver: browser.text("#job-status") == "cancelled", 10)
    check(bool(cancelled), "cancel: Enter on the cancel button cancels the running job")
    status, fetched, _ = server.request("GET", f"/v1/jobs/{job['id']}")
    check(fetched["status"] == "cancelled", "cancel: the API agrees")


def test_escaping(browser, server):
    # No double quotes, so that the JSON shown holds the text unchanged.
    hostile = "<img src=x onerror=alert(1)> <img src=x onerror=window.__xss=1> </script><script>window.__xss=2</script>"
    job = submit(server, {"kind": "write_code", "input": {"name": hostile, "max_seconds": 0}})
    goto(browser, server, f"#/jobs/{job['id']}", "#job-input")
    browser.wait(lambda driver: browser.text("#job-status") == "succeeded", 10)
    check(hostile in (browser.text("#job-input") or ""), "escaping: the input is shown literally")
    check(hostile in (browser.text("#job-result") or ""), "escaping: the result too")
    check(not browser.driver.find_elements(By.CSS_SELECTOR, "main img"), "escaping: no <img> was made")
    try:
        browser.driver.switch_to.alert
        check(False, "escaping: no alert ran")
    except NoAlertPresentException:
        check(True, "escaping: no alert ran")
    check(browser.driver.execute_script("return window.__xss === undefined"), "escaping: no script ran")
    page_checks(browser, "job-detail")


def test_pages(browser, server):
    goto(browser, server, "#/jobs", "table tbody tr")
    page_checks(browser, "jobs")
    goto(browser, server, "#/submit", "#submit-input")
    page_checks(browser, "submit")


def test_api_keys(browser, binary):
    alice, bob = "alice-browser-key-123", "bob-browser-key-456"
    server = Server(binary, "--store", "memory", "--api-key", alice, "--api-key", bob)
    try:
        goto(browser, server, "", "#api-key")
        page_checks(browser, "api-key")
        field = browser.driver.find_element(By.ID, "api-key")
        field.send_keys("not-a-key")
        field.send_keys(Keys.ENTER)
        refused = browser.wait(lambda driver: "Key refused" in (browser.text("main") or ""), 10)
        check(bool(refused), "api keys: a wrong key is refused with a message")
        alice_jobs = [submit(server, QUICK, alice)["id"] for _ in range(3)]
        field = browser.driver.find_element(By.ID, "api-key")
        field.send_keys(bob)
        field.send_keys(Keys.ENTER)
        browser.wait(lambda driver: driver.find_elements(By.ID, "count-succeeded"), 10)
        browser.wait(lambda driver: browser.text("#live") == "live", 5)
        bob_job = submit(server, QUICK, bob)["id"]
        alice_jobs += [submit(server, QUICK, alice)["id"] for _ in range(3)]  # while bob's page is live
        browser.open(f"{server.base}/ui/#/jobs")
        shown = browser.wait(lambda driver: bob_job in driver.page_source, 10)
        check(bool(shown), "api keys: tenant B sees its own job")
        source = browser.driver.page_source
        check(not any(job in source for job in alice_jobs), "api keys: tenant B's page never shows tenant A's jobs")
        logged = "".join(server.log)
        check(bob not in logged and alice not in logged and bob not in browser.driver.current_url, "api keys: no key in a URL or the log")
    finally:
        server.stop()


def main():
    binary = os.path.abspath(sys.argv[1])
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(os.path.dirname(__import__("selenium_axe_python").__file__), "axe-core", "axe.min.js")) as script:
        print("info  axe-core", script.readline().strip().strip("/*! "), flush=True)
    server = Server(binary, "--store", "memory", "--workers", "8")
    browser = None
    try:
        browser = Browser()
        print("info  browser", browser.driver.capabilities.get("browserVersion"), flush=True)
        test_open_dashboard(browser, server)
        test_live_counts(browser, server)
        test_submit_form(browser, server)
        test_cancel(browser, server)
        test_escaping(browser, server)
        test_pages(browser, server)
        test_api_keys(browser, binary)
    finally:
        if browser:
            browser.quit()
        server.stop()
    if failures:
        sys.exit(f"dashboard_test.py: {len(failures)} check(s) failed:\n  " + "\n  ".join(failures))
    print("dashboard_test.py: every check passed")


if __name__ == "__main__":
    main()
