"""Build docs/serve.jpg (the README's picture of ``hifialbedo serve``): the page after
uploading the sample photo, the face turned a little and relit by a dragged directional light.

Needs Debian's chromium and chromium-driver and the test extra (selenium).
Usage: python tools/make_web_screenshot.py [OUT.jpg]
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hifialbedo.web.app import ServeConfig, create_app

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ServeConfig(port=port)), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--window-size=1440,1180",
        "--hide-scrollbars",
        f"--user-data-dir={tempfile.mkdtemp()}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return !!document.querySelector('#base-lights button')"))
        driver.find_element(By.ID, "file-input").send_keys(str(ROOT / "samples" / "grace_hopper.jpg"))
        driver.find_element(By.ID, "run").click()
        WebDriverWait(driver, 300, poll_frequency=0.5).until(lambda d: d.execute_script("return window.hifi.ready"))
        driver.execute_script(
            "window.hifi.setLight({base: 'studio', strength: 0.45, exposure: 0.2, directional: "
            "{on: true, direction: [0.62, 0.42, 0.66], colour: [1.0, 0.86, 0.7], intensity: 0.9, ambient: 0.05}});"
            "window.hifi.orbit(-24, 6);"
        )
        time.sleep(1.0)
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(30)  # the app's shutdown deletes the job folders
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    img = cv2.resize(img, (1200, round(img.shape[0] * 1200 / img.shape[1])), interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 82])
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "serve.jpg")
