using Kiln.Cli;

return await KilnApp.RunAsync(args);
