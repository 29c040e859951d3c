"""The page in a real browser: headless Debian Chromium, driven by Selenium, against a live ``litesr serve``.

Upload an image, wait for the result, check its size, move the before/after slider with
the keyboard, and take a screenshot (``LITESR_SERVE_SCREENSHOT=docs/serve.png`` keeps it:
that is the README's picture). Skips, with the reason, where Chromium or its driver is not
installed (CI installs Debian's ``chromium`` and ``chromium-driver``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_serve_cli import start_server  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "sample.png"
MODEL = "scnet-t-x4.litesr"  # packaged, small: a ×4 of the sample in well under a second


def chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.mark.slow
def test_the_page_upscales_an_image_in_chromium(tmp_path: Path) -> None:
    browser, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=900,1250", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    process, url = start_server(["-m", MODEL], tmp_path)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.get(f"{url}/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#model option[value='{MODEL}']"))
        assert driver.find_element(By.ID, "model").get_attribute("value") == MODEL

        driver.find_element(By.ID, "files").send_keys(str(SAMPLE))
        done = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".result.done, .result.failed"))
        assert "done" in done.get_attribute("class"), done.text
        width, height = Image.open(SAMPLE).size
        wait.until(lambda d: done.get_attribute("data-width"))
        assert (int(done.get_attribute("data-width")), int(done.get_attribute("data-height"))) == (4 * width,
                                                                                                 4 * height)
        assert done.find_element(By.CSS_SELECTOR, ".download").get_attribute("download") == "sample_x4.png"

        slider = done.find_element(By.CSS_SELECTOR, ".slider")
        slider.send_keys(*[Keys.ARROW_LEFT] * 20)  # keyboard-operable: 50 % → 30 %
        assert slider.get_attribute("value") == "30"
        frame = done.find_element(By.CSS_SELECTOR, ".frame")
        assert driver.execute_script("return arguments[0].style.getPropertyValue('--pos')", frame) == "30%"
        assert driver.find_element(By.ID, "zip").is_enabled()
        assert not driver.find_element(By.ID, "token-form").is_displayed()  # no token on this server

        driver.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "serve.png"
        driver.save_screenshot(str(shot))
        assert Image.open(shot).size[0] > 0
        keep = os.environ.get("LITESR_SERVE_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)
    finally:
        driver.quit()
        process.terminate()
        process.wait(timeout=30)
