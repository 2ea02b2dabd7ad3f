# seqmt translation server: build stage with the compilers and -dev packages,
# slim runtime stage with only the shared libraries, the binary and the
# bundled English-German model.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake make gcc libc6-dev pkg-config libopenblas-dev libutf8proc-dev libcjson-dev \
      libmicrohttpd-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src src
COPY vocab vocab
COPY service service
COPY bench bench
COPY tests tests
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target seqmt -j"$(nproc)"

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0-pthread libutf8proc2 libcjson1 libmicrohttpd12 zlib1g curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/seqmt /usr/local/bin/seqmt
COPY models/en-de.seqmt /usr/share/seqmt/en-de.seqmt
# Models of your own go in the volume: docker run -v "$PWD/mymodels:/models" ...
# then add --model /models/NAME.seqmt to the command.
VOLUME /models
ENV SEQMT_MODEL=/usr/share/seqmt/en-de.seqmt
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD curl -fsS http://127.0.0.1:5000/health || exit 1
ENTRYPOINT ["seqmt", "serve", "--host", "0.0.0.0", "--port", "5000"]
