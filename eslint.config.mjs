// Lint for the TypeScript of src/, test/ and bench/ (formatting is prettier's, not eslint's).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native/build/', 'bpf/.output/', 'test/collector/otelcol/', 'scripts/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // An unused binding is a leftover; a leading underscore marks one that is unused on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A callback that refers to a binding assigned once the thing it is handed to exists.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests walk parsed YAML and JSON documents (manifests, configs) whose shape they are asserting.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
