// @ts-check
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

const CLIENT_IS_FRAMEWORK_FREE =
  "src/client/ is framework-free: no React, nothing from src/react/ or src/page/ (STYLE.md §11)";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "src/generated/"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ["src/react/**/*.{ts,tsx}", "src/page/**/*.{ts,tsx}", "test/**/*.tsx"],
    plugins: { "react-hooks": reactHooks },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
    },
  },
  {
    // Tests index into arrays they have just checked; `!` keeps them short.
    files: ["test/**/*.{ts,tsx}"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
  {
    // The client must stay framework-free (STYLE.md §11): no React, and nothing from the hooks
    // (src/react) or the page (src/page), which depend on it, not the other way round.
    files: ["src/client/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              // gitignore-style: "**/react" is the package and ../react; "**/react/**" is
              // react/jsx-runtime and ../react/index.
              group: ["**/react", "**/react/**", "react-dom", "react-dom/**", "**/page", "**/page/**"],
              message: CLIENT_IS_FRAMEWORK_FREE,
            },
          ],
        },
      ],
      // The same for `import(...)`, which no-restricted-imports does not look at.
      "no-restricted-syntax": [
        "error",
        {
          selector: "ImportExpression[source.value=/^react(-dom)?(\\/|$)|(^|\\/)(react|page)(\\/|$)/]",
          message: CLIENT_IS_FRAMEWORK_FREE,
        },
      ],
    },
  },
);
