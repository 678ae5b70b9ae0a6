"""The console in a real headless Chromium (Debian's chromium and chromedriver, driven by Selenium).

  console_browser.py BASE_URL PASSWORD ROUTER INVENTORIES_JSON
INVENTORIES_JSON: what each agent's own MCP client lists through the gateway of service "mcp" (see console_check.py).
Prints one JSON object: {"ok": true} or {"ok": false, "failures": [...]}.
"""
import json
import sys
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

base, password, router, inventories_json = sys.argv[1:5]
inventories = json.loads(inventories_json)
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def submit(form):
    """Submits a form the way a person does, and waits for the page it leads to."""
    button = form.find_element(By.TAG_NAME, "button")
    button.click()

    def left(_):
        # chromedriver says "stale" or "does not belong to the document" once the page is replaced.
        try:
            button.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 20).until(left)
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")


def settled(read):
    """What `read` returns, read again if the page's live script replaced an element meanwhile."""
    for _ in range(20):
        try:
            return read()
        except StaleElementReferenceException:
            pass
    return read()


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"]:
    options.add_argument(argument)
# The controller's certificate is issued by the network's own CA, which this browser does not know.
options.accept_insecure_certs = True
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(30)
try:
    # Without a session every page leads to sign-in.
    driver.get(base + "/console/audit")
    check(driver.current_url.endswith("/console/login"), f"no session, but the audit page opened: {driver.current_url}")

    driver.find_element(By.NAME, "password").send_keys(password)
    submit(driver.find_element(By.TAG_NAME, "form"))
    check(driver.current_url.endswith("/console/mesh"), f"sign-in did not lead to the mesh page: {driver.current_url}")
    labels = settled(lambda: [element.text for element in driver.find_elements(By.CSS_SELECTOR, "svg text.router-label")])
    check(any(label.startswith(router) for label in labels), f"the mesh graph does not show {router}: {labels}")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg circle.router")) >= 1, "no router drawn")
    # The graph is live: it changes in place, the page is not reloaded.
    driver.execute_script("window.portlessMarker = 42")
    before = settled(lambda: driver.find_element(By.CSS_SELECTOR, "#mesh-live time.as-of").text)
    # (The script replaces the graph's elements while the test reads them: a read can find one gone.)
    live = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
    live.until(lambda d: d.find_element(By.CSS_SELECTOR, "#mesh-live time.as-of").text != before)
    check(driver.execute_script("return window.portlessMarker") == 42, "the mesh page reloaded instead of updating in place")
    live.until(lambda d: any(element.text.startswith(router) for element in d.find_elements(By.CSS_SELECTOR, "#mesh-live svg text.router-label")),
               f"after a live update the graph does not show {router}")

    # Create an identity and a policy through the forms.
    driver.get(base + "/console/access")
    form = driver.find_element(By.XPATH, "//form[.//input[@value='create-identity']]")
    form.find_element(By.NAME, "name").send_keys("browser-made")
    form.find_element(By.NAME, "roles").send_keys("clients")
    submit(form)
    status = driver.find_elements(By.CSS_SELECTOR, "[role=status]")
    check(status and "browser-made" in status[0].text, f"no confirmation for the new identity: {[s.text for s in status]}")
    # Edit its roles in place, in its row.
    form = driver.find_element(By.XPATH, "//form[.//input[@value='update-identity'] and .//input[@name='name' and @value='browser-made']]")
    roles = form.find_element(By.NAME, "roles")
    roles.clear()
    roles.send_keys("clients, browsers")
    submit(form)
    status = driver.find_elements(By.CSS_SELECTOR, "[role=status]")
    check(status and "browser-made" in status[0].text and "browsers" in status[0].text, f"no confirmation for the edit: {[s.text for s in status]}")
    form = driver.find_element(By.XPATH, "//form[.//input[@value='create-service-policy']]")
    form.find_element(By.NAME, "name").send_keys("browser-dial-demo")
    form.find_element(By.NAME, "identities").send_keys("@browser-made")
    form.find_element(By.NAME, "services").send_keys("#demo")
    submit(form)
    check("browser-dial-demo" in driver.page_source, "the new policy is not listed")

    # The same form without its CSRF token (as a forged cross-site post would come): refused.
    form = driver.find_element(By.XPATH, "//form[.//input[@value='create-identity']]")
    driver.execute_script("arguments[0].querySelector('input[name=csrf]').remove()", form)
    form.find_element(By.NAME, "name").send_keys("browser-forged")
    submit(form)
    check("CSRF token is missing or wrong" in driver.page_source, "a form without its CSRF token was not refused")

    # Exactly what each agent sees through the MCP gateway, as a person reads the access page.
    for agent, seen in inventories.items():
        driver.get(base + "/console/access?identity=" + agent)
        row = driver.find_element(By.XPATH, "//section[@id='identity']//tr[td[1]/a[text()='mcp']]")
        for kind in ["tools", "resources", "templates", "prompts"]:
            shown = sorted(link.text for link in row.find_elements(By.CSS_SELECTOR, f"span.{kind} a"))
            check(shown == sorted(seen.get(kind, [])), f"{agent}: the access page shows {kind} {shown}, its client sees {sorted(seen.get(kind, []))}")

    # What this test did shows up: the MCP call in the audit trail, the LLM request's cost.
    driver.get(base + "/console/audit?type=mcp.request")
    rows = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]
    check(any("support-agent" in row and "mcp.request" in row for row in rows), f"the audit page lacks the MCP call: {rows[:3]}")
    check("hash chain verified" in driver.page_source, "no chain verification on the audit page")
    driver.get(base + "/console/spend?by=model")
    rows = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]
    check(any(row.startswith("mock-small") for row in rows), f"the spend page lacks the request's model: {rows}")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg rect.bar")) >= 1, "no bar in the spend chart")

    # The console's own script file is the only script a page carries.
    sources = [element.get_attribute("src") for element in driver.find_elements(By.TAG_NAME, "script")]
    check(all(source and source.endswith("/console/console.js") for source in sources), f"a page carries another script: {sources}")
    console_errors = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE" and "Content Security Policy" in entry.get("message", "")]
    check(not console_errors, f"the Content-Security-Policy blocked something the console needs: {console_errors}")
except Exception:
    failures.append(traceback.format_exc(limit=3))
finally:
    driver.quit()

print(json.dumps({"ok": not failures, "failures": failures}))
