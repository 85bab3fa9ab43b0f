# The CPU model server (OpenAI-compatible, node-llama-cpp) as a container image. The GGUF model is
# mounted, not baked in:
#
#   docker build -f docker/model-server.Dockerfile -t evalflow/model-server .
#   docker run --rm --network host -v /path/to/model.gguf:/model/model.gguf:ro evalflow/model-server \
#     --host 127.0.0.1 --port 8000 --model /model/model.gguf
#
# Only the CPU build of llama.cpp for the build platform goes in (docker/images.ts decides, the same
# file set as the registry-free build `npm run images`).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npx tsc -p tsconfig.build.json && node dist/docker/build.js context model-server /image

FROM node:20-bookworm-slim
COPY --from=build /image/ /
ENV NODE_ENV=production
WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["node", "/opt/evalflow/dist/model-server/main.js"]
CMD ["--host", "0.0.0.0", "--port", "8000", "--model", "/model/model.gguf"]
