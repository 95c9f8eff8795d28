/** TypeScript shapes of the proto messages as @grpc/proto-loader hands them over (camelCase). */
export {};
//# sourceMappingURL=messages.js.map