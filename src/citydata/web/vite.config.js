// Vite build of the two pages: /ioc/ (operators) and /app/ (tourists). The output (static/) is committed so
// `make demo` needs no Node; tools/check_bundle.py fails `make check` when it is stale.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root: here,
  base: '/static/',
  publicDir: 'public',
  logLevel: 'warn',
  build: {
    outDir: 'static',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    chunkSizeWarningLimit: 400,
    rollupOptions: {
      input: { ioc: `${here}ioc/index.html`, app: `${here}app/index.html` },
    },
  },
})
